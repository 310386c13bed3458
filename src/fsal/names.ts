// Name checks applied to every name a client sends, before any provider receives it.

import { isUtf8 } from 'node:buffer'
import { AccessDenied, NameTooLong } from './errors.js'

export const NAME_BYTES_MAX = 255

/** Thrown for a name that could reach outside its directory; AegisFSAL audits it as blocked. */
export class BlockedName extends AccessDenied {
  override name = 'BlockedName'
}

/**
 * Returns the name as a string when it is exactly one path component: not empty, not "." or "..",
 * no "/" and no NUL, valid UTF-8, at most 255 bytes. Throws BlockedName or NameTooLong otherwise.
 */
export function checkName(raw: Buffer): string {
  if (raw.length === 0) throw new BlockedName('empty name')
  if (raw.length > NAME_BYTES_MAX) throw new NameTooLong(`name of ${raw.length} bytes is longer than ${NAME_BYTES_MAX}`)
  if (raw.includes(0x2f)) throw new BlockedName(`name ${JSON.stringify(raw.toString('utf8'))} contains "/"`)
  if (raw.includes(0)) throw new BlockedName('name contains a NUL byte')
  if (!isUtf8(raw)) throw new BlockedName('name is not valid UTF-8')
  const name = raw.toString('utf8')
  if (name === '.' || name === '..') throw new BlockedName(`name "${name}" is not a single component`)
  return name
}
