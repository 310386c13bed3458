// Resolution against a real OpenBao or Vault server, run only when VAULT_ADDR and VAULT_TOKEN are
// set (VAULT_NAMESPACE too, when the server needs one). The token needs create, read and delete
// on <mount>/data/aegis-node-test/* and delete on <mount>/metadata/aegis-node-test/*, where the
// mount is AEGIS_TEST_VAULT_MOUNT or `secret`, the KV version 2 engine of a dev server. For
// example, with OpenBao:
//
//   bao server -dev -dev-root-token-id=dev-only-token &
//   VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=dev-only-token npx vitest run test/secrets/vault-live.test.ts
//
// The test writes one secret under a fresh path and deletes it with all its versions.

import { randomBytes, randomUUID } from 'node:crypto'

import { pino } from 'pino'
import { describe, expect, it } from 'vitest'

import { SecretResolutionError } from '../../src/secrets/errors.js'
import { SecretResolver } from '../../src/secrets/resolver.js'

const address = (process.env.VAULT_ADDR ?? '').replace(/\/+$/, '')
const token = process.env.VAULT_TOKEN ?? ''
const namespace = process.env.VAULT_NAMESPACE === undefined || process.env.VAULT_NAMESPACE === '' ? null : process.env.VAULT_NAMESPACE
const mount = process.env.AEGIS_TEST_VAULT_MOUNT ?? 'secret'
const configured = address !== '' && token !== ''

function headers(): Record<string, string> {
  const result: Record<string, string> = { 'X-Vault-Token': token, 'Content-Type': 'application/json' }
  if (namespace !== null) result['X-Vault-Namespace'] = namespace
  return result
}

describe('live OpenBao or Vault', () => {
  it.skipIf(!configured)('writes, resolves and deletes a secret', async () => {
    const path = `aegis-node-test/${randomUUID()}`
    const value = randomBytes(18).toString('base64url')
    const logLines: string[] = []
    const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) })

    const written = await fetch(`${address}/v1/${mount}/data/${path}`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ data: { 'access-key': value } }),
      signal: AbortSignal.timeout(10_000)
    })
    expect(written.status).toBe(200)

    try {
      const resolver = new SecretResolver({
        vault: { address, mount, namespace, auth: { method: 'token', token: { kind: 'env', name: 'VAULT_TOKEN' } }, timeoutMs: 5000 },
        logger
      })
      expect(await resolver.resolve(`secret:${path}/access-key`)).toBe(value)

      const missingKey = await resolver.resolve(`secret:${path}/other-key`).catch((error: unknown) => error)
      expect(missingKey).toBeInstanceOf(SecretResolutionError)
      expect((missingKey as SecretResolutionError).message).toContain('has no key "other-key"; its keys are access-key')

      const missingPath = await resolver.resolve(`secret:${path}-missing/access-key`).catch((error: unknown) => error)
      expect(missingPath).toBeInstanceOf(SecretResolutionError)
      expect((missingPath as SecretResolutionError).status).toBe(404)

      for (const message of [(missingKey as Error).message, (missingPath as Error).message, logLines.join('')]) {
        expect(message).not.toContain(value)
        expect(message).not.toContain(token)
      }
    } finally {
      const removed = await fetch(`${address}/v1/${mount}/metadata/${path}`, { method: 'DELETE', headers: headers(), signal: AbortSignal.timeout(10_000) })
      expect(removed.status).toBe(204)
    }
  })
})
