// Parsing of the two reference forms that volume configs may contain. The config layer has
// already checked their syntax, so these functions only split them.

import { envReferencePattern, isReference, secretReferencePattern } from '../config/backends.js'

export { isReference }

export type Reference =
  /** `env:NAME`: the environment variable NAME. */
  | { kind: 'env'; name: string }
  /** `secret:<path>/<key>`: the key `key` of the KV secret at `path`. */
  | { kind: 'secret'; path: string; key: string }

/** Splits a reference, or returns null for a string that is not one. */
export function parseReference(value: string): Reference | null {
  if (envReferencePattern.test(value)) return { kind: 'env', name: value.slice('env:'.length) }
  if (!secretReferencePattern.test(value)) return null

  // The key is the last segment, so secret:aws/s3-reader/access-key reads access-key at aws/s3-reader.
  const body = value.slice('secret:'.length)
  const lastSlash = body.lastIndexOf('/')
  return { kind: 'secret', path: body.slice(0, lastSlash), key: body.slice(lastSlash + 1) }
}
