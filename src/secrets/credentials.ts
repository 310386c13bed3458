// Reading the credentials the node logs in with: written in the config, taken from an environment
// variable or read from a file. Messages name the config field, the variable or the file path,
// and never the credential.

import { readFile } from 'node:fs/promises'

import type { CredentialSource } from '../config/secrets.js'

/** Thrown when a credential cannot be read. The message names the field and gives the fix. */
export class CredentialUnavailable extends Error {
  override name = 'CredentialUnavailable'
}

export type Environment = Readonly<Record<string, string | undefined>>

/**
 * Returns the credential of `source`. A file is read on every call, so a rotated file is picked
 * up at the next login, and trailing whitespace (the final newline of most files) is removed.
 */
export async function readCredential(source: CredentialSource, field: string, env: Environment): Promise<string> {
  switch (source.kind) {
    case 'literal':
      return source.value

    case 'env': {
      const value = env[source.name]
      if (value === undefined) {
        throw new CredentialUnavailable(`${field} names the environment variable ${source.name}, which is not set; set it in the environment of aegis-node`)
      }
      if (value === '') {
        throw new CredentialUnavailable(`${field} names the environment variable ${source.name}, which is empty; set it to the credential`)
      }
      return value
    }

    case 'file': {
      let text: string
      try {
        text = await readFile(source.path, 'utf8')
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unknown error'
        throw new CredentialUnavailable(`${field} names the file ${source.path}, which cannot be read (${code}); check the path and that aegis-node may read it`, { cause: error })
      }
      const value = text.trimEnd()
      if (value === '') throw new CredentialUnavailable(`${field} names the file ${source.path}, which is empty; write the credential into it`)
      return value
    }
  }
}
