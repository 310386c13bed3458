// SecretResolver against the fake OpenBao/Vault server: token and AppRole logins, errors for
// each way a lookup fails, retries, caching, and that no resolved value or credential reaches
// an error message or the log.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { pino, type Logger } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { parseConfigText, type VaultAuthConfig, type VaultConfig } from '../../src/config/index.js'
import { SecretResolutionError } from '../../src/secrets/errors.js'
import { SecretResolver, type SecretResolverOptions } from '../../src/secrets/resolver.js'
import { VaultFake } from '../helpers/vault-fake.js'

const rootToken = 's.token-for-resolver-tests'
const roleId = 'role-id-aegis-node'
const secretId = 'secret-id-for-resolver-tests-0003'
const accessKey = 'AKIA-test-access-key-0001'
const secretKey = 'wJalr-test-secret-key-0002'
const accessKeyReference = 'secret:aws/s3-reader/access-key'
const secretKeyReference = 'secret:aws/s3-reader/secret-key'

/** Every value that must never appear in a message or a log line. */
const secretValues = [rootToken, secretId, accessKey, secretKey]

let fake: VaultFake
let logLines: string[]
let logger: Logger

beforeEach(async () => {
  fake = await VaultFake.start({ tokens: [rootToken], approle: { roleId, secretId } })
  fake.putSecret('aws/s3-reader', { 'access-key': accessKey, 'secret-key': secretKey })
  logLines = []
  logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) })
})

afterEach(async () => {
  await fake.close()
})

const tokenAuth: VaultAuthConfig = { method: 'token', token: { kind: 'literal', value: rootToken } }
const approleAuth: VaultAuthConfig = {
  method: 'approle',
  roleId: { kind: 'literal', value: roleId },
  secretId: { kind: 'literal', value: secretId }
}

function vaultConfig(auth: VaultAuthConfig = tokenAuth, overrides: Partial<VaultConfig> = {}): VaultConfig {
  return { address: fake.address, mount: 'secret', namespace: null, auth, timeoutMs: 2000, ...overrides }
}

function makeResolver(options: Partial<SecretResolverOptions> = {}): SecretResolver {
  return new SecretResolver({ vault: vaultConfig(), logger, env: {}, retries: 2, retryDelayMs: 10, ...options })
}

/** Runs `action` and returns the SecretResolutionError it throws. */
async function resolutionError(action: () => Promise<unknown>): Promise<SecretResolutionError> {
  try {
    await action()
  } catch (error) {
    expect(error).toBeInstanceOf(SecretResolutionError)
    return error as SecretResolutionError
  }
  throw new Error('expected a SecretResolutionError, but the lookup succeeded')
}

function expectNoSecrets(text: string): void {
  for (const value of secretValues) expect(text).not.toContain(value)
}

/** Returns a loopback address where nothing listens, so connecting is refused. */
async function closedAddress(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

describe('token login', () => {
  it('reads the key of a KV v2 secret', async () => {
    const resolver = makeResolver()
    expect(await resolver.resolve(accessKeyReference)).toBe(accessKey)

    expect(fake.requests).toHaveLength(1)
    const [request] = fake.requests
    expect(request.method).toBe('GET')
    expect(request.path).toBe('/v1/secret/data/aws/s3-reader')
    expect(request.token).toBe(rootToken)
    expect(request.namespace).toBeNull()
  })

  it('sends mount and namespace', async () => {
    await fake.close()
    fake = await VaultFake.start({ tokens: [rootToken], mount: 'team-a/kv' })
    fake.putSecret('db', { password: 'database-password-01' })
    const resolver = makeResolver({ vault: vaultConfig(tokenAuth, { mount: 'team-a/kv', namespace: 'admin/team-a' }) })

    expect(await resolver.resolve('secret:db/password')).toBe('database-password-01')
    expect(fake.requests[0].path).toBe('/v1/team-a/kv/data/db')
    expect(fake.requests[0].namespace).toBe('admin/team-a')
  })

  it('encodes path segments', async () => {
    fake.putSecret('team?a/db#1', { password: 'database-password-02' })
    const resolver = makeResolver()

    expect(await resolver.resolve('secret:team?a/db#1/password')).toBe('database-password-02')
    expect(fake.requests[0].path).toBe('/v1/secret/data/team%3Fa/db%231')
  })

  it('reads the token from an environment variable', async () => {
    const resolver = makeResolver({ vault: vaultConfig({ method: 'token', token: { kind: 'env', name: 'VAULT_TOKEN' } }), env: { VAULT_TOKEN: rootToken } })
    expect(await resolver.resolve(accessKeyReference)).toBe(accessKey)
  })

  it('names an unset token variable', async () => {
    const resolver = makeResolver({ vault: vaultConfig({ method: 'token', token: { kind: 'env', name: 'VAULT_TOKEN' } }) })
    const error = await resolutionError(() => resolver.resolve(accessKeyReference))

    expect(error.message).toContain(accessKeyReference)
    expect(error.message).toContain('secrets.vault.token')
    expect(error.message).toContain('VAULT_TOKEN, which is not set')
    expect(error.status).toBeNull()
    expect(fake.requests).toHaveLength(0)
  })

  it('rereads a rotated token file after 403', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'aegis-secrets-'))
    try {
      const tokenFile = join(directory, 'token')
      await writeFile(tokenFile, `${rootToken}\n`)
      const resolver = makeResolver({ vault: vaultConfig({ method: 'token', token: { kind: 'file', path: tokenFile } }) })
      expect(await resolver.resolve(accessKeyReference)).toBe(accessKey)

      fake.revokeAllTokens()
      fake.addToken('s.rotated-token-0004')
      await writeFile(tokenFile, 's.rotated-token-0004\n')

      expect(await resolver.resolve(secretKeyReference)).toBe(secretKey)
      expect(fake.requests.map((request) => request.token)).toEqual([rootToken, rootToken, 's.rotated-token-0004'])
    } finally {
      await rm(directory, { recursive: true, force: true })
    }
  })

  it('rejects a bad token with 403', async () => {
    const resolver = makeResolver({ vault: vaultConfig({ method: 'token', token: { kind: 'literal', value: 's.wrong-token-0005' } }) })
    const error = await resolutionError(() => resolver.resolve(accessKeyReference))

    expect(error.status).toBe(403)
    expect(error.address).toBe(fake.address)
    expect(error.message).toContain(accessKeyReference)
    expect(error.message).toContain(fake.address)
    expect(error.message).toContain('HTTP 403: permission denied')
    expect(error.message).not.toContain('s.wrong-token-0005')
    expect(fake.requests).toHaveLength(1)
  })
})

describe('AppRole login', () => {
  it('logs in once for several reads', async () => {
    const resolver = makeResolver({ vault: vaultConfig(approleAuth) })
    expect(await resolver.resolve(accessKeyReference)).toBe(accessKey)
    expect(await resolver.resolve(secretKeyReference)).toBe(secretKey)

    const logins = fake.requestsTo('/v1/auth/approle/login')
    expect(logins).toHaveLength(1)
    expect(logins[0].body).toEqual({ role_id: roleId, secret_id: secretId })
    expect(logins[0].token).toBeNull()
    const reads = fake.requestsTo('/v1/secret/data/aws/s3-reader')
    expect(reads.map((request) => request.token)).toEqual([fake.issuedTokens[0], fake.issuedTokens[0]])
  })

  it('logs in again after 403', async () => {
    const resolver = makeResolver({ vault: vaultConfig(approleAuth) })
    await resolver.resolve(accessKeyReference)
    fake.revokeAllTokens()

    expect(await resolver.resolve(secretKeyReference)).toBe(secretKey)
    expect(fake.requestsTo('/v1/auth/approle/login')).toHaveLength(2)
    const reads = fake.requestsTo('/v1/secret/data/aws/s3-reader')
    expect(reads.map((request) => request.token)).toEqual([fake.issuedTokens[0], fake.issuedTokens[0], fake.issuedTokens[1]])
    expect(logLines.join('')).toContain('retrying with a new token')
  })

  it('logs in again before the lease ends', async () => {
    await fake.close()
    fake = await VaultFake.start({ approle: { roleId, secretId, leaseSeconds: 1 } })
    fake.putSecret('aws/s3-reader', { 'access-key': accessKey, 'secret-key': secretKey })
    const resolver = makeResolver({ vault: vaultConfig(approleAuth) })
    await resolver.resolve(accessKeyReference)
    await new Promise((resolve) => setTimeout(resolve, 1000))

    await resolver.resolve(secretKeyReference)
    expect(fake.requestsTo('/v1/auth/approle/login')).toHaveLength(2)
    expect(fake.requestsTo('/v1/secret/data/aws/s3-reader')).toHaveLength(2)
  })

  it('reports a rejected login', async () => {
    const wrongSecretId = 'wrong-secret-id-0006'
    const auth: VaultAuthConfig = { ...approleAuth, secretId: { kind: 'literal', value: wrongSecretId } }
    const resolver = makeResolver({ vault: vaultConfig(auth) })
    const error = await resolutionError(() => resolver.resolve(accessKeyReference))

    expect(error.status).toBe(400)
    expect(error.message).toContain(accessKeyReference)
    expect(error.message).toContain(`AppRole login at ${fake.address} failed (HTTP 400: invalid role or secret ID)`)
    expect(error.message).not.toContain(wrongSecretId)
    expect(fake.requestsTo('/v1/secret/data/aws/s3-reader')).toHaveLength(0)
  })

  it('does not retry a failed login', async () => {
    fake.failNext(1, 500, ['internal error'])
    const resolver = makeResolver({ vault: vaultConfig(approleAuth) })
    const error = await resolutionError(() => resolver.resolve(accessKeyReference))

    expect(error.status).toBe(500)
    expect(fake.requestsTo('/v1/auth/approle/login')).toHaveLength(1)
  })

  it('names each waiting reference', async () => {
    const resolver = makeResolver({ vault: vaultConfig({ ...approleAuth, roleId: { kind: 'literal', value: 'unknown-role' } }) })
    const [first, second] = await Promise.all([
      resolutionError(() => resolver.resolve(accessKeyReference)),
      resolutionError(() => resolver.resolve(secretKeyReference))
    ])

    expect(first.reference).toBe(accessKeyReference)
    expect(second.reference).toBe(secretKeyReference)
    expect(second.message.startsWith(`${secretKeyReference}: AppRole login`)).toBe(true)
    expect(fake.requestsTo('/v1/auth/approle/login')).toHaveLength(1)
  })
})

describe('lookup errors', () => {
  it('missing path', async () => {
    const error = await resolutionError(() => makeResolver().resolve('secret:aws/missing/access-key'))

    expect(error.status).toBe(404)
    expect(error.reference).toBe('secret:aws/missing/access-key')
    expect(error.message).toContain(`no secret at aws/missing in the KV engine secret of ${fake.address} (HTTP 404)`)
  })

  it('missing key', async () => {
    const error = await resolutionError(() => makeResolver().resolve('secret:aws/s3-reader/session-token'))

    expect(error.status).toBe(200)
    expect(error.message).toContain('has no key "session-token"; its keys are access-key, secret-key')
    expectNoSecrets(error.message)
  })

  it('deleted latest version', async () => {
    fake.deleteLatest('aws/s3-reader')
    const error = await resolutionError(() => makeResolver().resolve(accessKeyReference))

    expect(error.status).toBe(404)
    expect(error.message).toContain('latest version of the secret at aws/s3-reader')
    expect(error.message).toContain('was deleted at')
  })

  it('value that is a map', async () => {
    fake.putSecret('nested', { settings: { region: 'eu-west-1' } })
    const error = await resolutionError(() => makeResolver().resolve('secret:nested/settings'))
    expect(error.message).toContain('is a map, not a string')
  })

  it('number value as a string', async () => {
    fake.putSecret('numbers', { port: 9000 })
    expect(await makeResolver().resolve('secret:numbers/port')).toBe('9000')
  })

  it('redirect not followed', async () => {
    fake.failNext(1, 307)
    const error = await resolutionError(() => makeResolver().resolve(accessKeyReference))

    expect(error.status).toBe(307)
    expect(error.message).toContain('redirect')
    expect(fake.requests).toHaveLength(1)
  })

  it('metadata host name refused', async () => {
    const names: string[] = []
    const lookup = async (hostname: string) => {
      names.push(hostname)
      return [{ address: '169.254.169.254' }]
    }
    const vault = vaultConfig(tokenAuth, { address: 'http://vault.internal.test:8200' })
    const error = await resolutionError(() => makeResolver({ vault, lookup }).resolve(accessKeyReference))

    expect(names).toEqual(['vault.internal.test'])
    expect(error.message).toContain(accessKeyReference)
    expect(error.message).toContain('resolves to 169.254.169.254')
    expect(error.message).not.toContain(rootToken)
    expect(fake.requests).toHaveLength(0)
  })

  it('no vault configured', async () => {
    const error = await resolutionError(() => makeResolver({ vault: null }).resolve(accessKeyReference))
    expect(error.message).toContain('no secrets.vault server is configured')
  })

  it('string that is not a reference', async () => {
    await expect(makeResolver().resolve(accessKey)).rejects.toThrow(TypeError)
    await expect(makeResolver().resolve(accessKey)).rejects.not.toThrow(accessKey)
  })
})

describe('retries', () => {
  it('retries 503 until it succeeds', async () => {
    fake.failNext(2, 503, ['Vault is sealed'])
    expect(await makeResolver().resolve(accessKeyReference)).toBe(accessKey)
    expect(fake.requests).toHaveLength(3)
    expect(logLines.filter((line) => line.includes('retrying'))).toHaveLength(2)
  })

  it('gives up after the last retry', async () => {
    fake.failNext(3, 503, ['Vault is sealed'])
    const error = await resolutionError(() => makeResolver().resolve(accessKeyReference))

    expect(error.status).toBe(503)
    expect(error.message).toContain('HTTP 503: Vault is sealed')
    expect(error.message).toContain('unsealed')
    expect(fake.requests).toHaveLength(3)
  })

  it('retries 429', async () => {
    fake.failNext(1, 429)
    expect(await makeResolver().resolve(accessKeyReference)).toBe(accessKey)
    expect(fake.requests).toHaveLength(2)
  })

  it('does not retry 400', async () => {
    fake.failNext(1, 400, ['invalid request'])
    const error = await resolutionError(() => makeResolver().resolve(accessKeyReference))
    expect(error.status).toBe(400)
    expect(fake.requests).toHaveLength(1)
  })

  it('fails fast when the server is down', async () => {
    const address = await closedAddress()
    const resolver = makeResolver({ vault: { ...vaultConfig(), address } })
    const started = Date.now()
    const error = await resolutionError(() => resolver.resolve(accessKeyReference))

    expect(Date.now() - started).toBeLessThan(3000)
    expect(error.status).toBeNull()
    expect(error.address).toBe(address)
    expect(error.message).toContain(accessKeyReference)
    expect(error.message).toContain(`cannot reach ${address} after 3 attempts`)
    expect(error.message).toContain('connect ECONNREFUSED 127.0.0.1:')
  })

  it('times out a stalled server', async () => {
    fake.stallNext(2)
    const resolver = makeResolver({ vault: vaultConfig(tokenAuth, { timeoutMs: 200 }), retries: 1 })
    const started = Date.now()
    const error = await resolutionError(() => resolver.resolve(accessKeyReference))

    expect(Date.now() - started).toBeLessThan(2000)
    expect(error.message).toContain('no response within 200ms (secrets.vault.timeout)')
    expect(fake.requests).toHaveLength(2)
  })

  it('stops waiting to retry on abort', async () => {
    fake.failNext(3, 503)
    const controller = new AbortController()
    const lookup = makeResolver({ retryDelayMs: 5000 }).resolve(accessKeyReference, controller.signal)
    setTimeout(() => controller.abort(new Error('node stopping')), 100)
    await expect(lookup).rejects.toThrow('node stopping')
    expect(fake.requests).toHaveLength(1)
  })

  it('stops when the signal aborts', async () => {
    fake.stallNext(1)
    const controller = new AbortController()
    const lookup = makeResolver().resolve(accessKeyReference, controller.signal)
    setTimeout(() => controller.abort(new Error('node stopping')), 50)
    await expect(lookup).rejects.toThrow('node stopping')
  })
})

describe('env references', () => {
  it('reads the variable', async () => {
    const resolver = makeResolver({ env: { AWS_REGION: 'eu-central-1' } })
    expect(await resolver.resolve('env:AWS_REGION')).toBe('eu-central-1')
    expect(fake.requests).toHaveLength(0)
  })

  it('rejects an unset variable', async () => {
    const error = await resolutionError(() => makeResolver().resolve('env:AWS_REGION'))
    expect(error.message).toBe('env:AWS_REGION: the environment variable AWS_REGION is not set; set it in the environment of aegis-node')
    expect(error.address).toBeNull()
  })

  it('rejects an empty variable', async () => {
    const error = await resolutionError(() => makeResolver({ env: { AWS_REGION: '' } }).resolve('env:AWS_REGION'))
    expect(error.message).toContain('AWS_REGION is empty')
  })
})

describe('caching', () => {
  it('reads each reference once', async () => {
    const resolver = makeResolver()
    await resolver.resolve(accessKeyReference)
    await resolver.resolve(accessKeyReference)
    expect(fake.requests).toHaveLength(1)
  })

  it('shares a lookup under way', async () => {
    const resolver = makeResolver()
    const values = await Promise.all([resolver.resolve(accessKeyReference), resolver.resolve(accessKeyReference), resolver.resolve(accessKeyReference)])
    expect(values).toEqual([accessKey, accessKey, accessKey])
    expect(fake.requests).toHaveLength(1)
  })

  it('keeps no failure', async () => {
    const resolver = makeResolver()
    await resolutionError(() => resolver.resolve('secret:later/value'))
    fake.putSecret('later', { value: 'written-later-0007' })
    expect(await resolver.resolve('secret:later/value')).toBe('written-later-0007')
  })
})

describe('resolveConfig', () => {
  it('resolves a copy', async () => {
    const config = {
      bucket: 'my-ml-datasets',
      access_key_id: accessKeyReference,
      secret_access_key: secretKeyReference,
      region: 'env:AWS_REGION',
      nested: { region: 'env:AWS_REGION' },
      list: [accessKeyReference, 'plain'],
      prefix_only: 'secret:',
      port: 9000
    }
    const before = structuredClone(config)
    const resolved = await makeResolver({ env: { AWS_REGION: 'eu-central-1' } }).resolveConfig(config)

    expect(resolved).toEqual({
      bucket: 'my-ml-datasets',
      access_key_id: accessKey,
      secret_access_key: secretKey,
      region: 'eu-central-1',
      nested: { region: 'eu-central-1' },
      list: [accessKey, 'plain'],
      prefix_only: 'secret:',
      port: 9000
    })
    expect(config).toEqual(before)
    expect(fake.requests).toHaveLength(2)
  })

  it('throws the failing reference', async () => {
    const error = await resolutionError(() => makeResolver().resolveConfig({ bucket: 'b', region: 'env:AWS_REGION' }))
    expect(error.reference).toBe('env:AWS_REGION')
  })

  it('logs references, not values', async () => {
    await makeResolver({ vault: vaultConfig(approleAuth) }).resolveConfig({ access_key_id: accessKeyReference, secret_access_key: secretKeyReference })
    const log = logLines.join('')

    expect(log).toContain(accessKeyReference)
    expect(log).toContain('logged in to the secret server with AppRole')
    expectNoSecrets(log)
    expect(log).not.toContain(fake.issuedTokens[0])
  })
})

describe('parsed config', () => {
  it('resolves a volume of a config file', async () => {
    const text = `volumes:
  - name: datasets
    type: opendal
    provider: s3
    mount_path: /workspace/datasets
    access_mode: read-only
    config:
      bucket: my-ml-datasets
      access_key_id: "${accessKeyReference}"
      secret_access_key: "${secretKeyReference}"
secrets:
  vault:
    address: ${fake.address}/
    approle:
      role_id: env:AEGIS_ROLE_ID
      secret_id: env:AEGIS_SECRET_ID
    timeout: 2s
`
    const config = parseConfigText(text, { source: 'test', baseDir: tmpdir() })
    const resolver = new SecretResolver({ vault: config.secrets.vault, logger, env: { AEGIS_ROLE_ID: roleId, AEGIS_SECRET_ID: secretId } })

    expect(await resolver.resolveConfig(config.volumes[0].config)).toEqual({ bucket: 'my-ml-datasets', access_key_id: accessKey, secret_access_key: secretKey })
    expect(fake.requestsTo('/v1/auth/approle/login')).toHaveLength(1)
  })
})

describe('no leaks', () => {
  it('keeps values out of errors and logs', async () => {
    const messages: string[] = []
    const collect = async (action: () => Promise<unknown>) => messages.push((await resolutionError(action)).message)

    // Resolve first, so each value is known and could leak into later messages.
    const resolver = makeResolver({ vault: vaultConfig(approleAuth) })
    await resolver.resolve(accessKeyReference)
    await resolver.resolve(secretKeyReference)

    await collect(() => resolver.resolve('secret:aws/missing/key'))
    await collect(() => resolver.resolve('secret:aws/s3-reader/other'))
    fake.failNext(3, 500, [`token ${fake.issuedTokens[0]} failed with secret_id ${secretId}`])
    await collect(() => resolver.resolve('secret:aws/other/key'))
    await collect(() => makeResolver({ vault: vaultConfig({ ...approleAuth, roleId: { kind: 'literal', value: 'unknown' } }) }).resolve(accessKeyReference))
    await collect(() => makeResolver({ vault: vaultConfig({ method: 'token', token: { kind: 'literal', value: `${rootToken}-x` } }) }).resolve(accessKeyReference))
    const down = await closedAddress()
    await collect(() => makeResolver({ vault: { ...vaultConfig(tokenAuth), address: down }, retries: 0 }).resolve(accessKeyReference))

    expect(messages).toHaveLength(6)
    expect(messages[2]).toContain('[secret]')
    for (const message of messages) {
      expectNoSecrets(message)
      expect(message).not.toContain(fake.issuedTokens[0])
    }
    const log = logLines.join('')
    expectNoSecrets(log)
    expect(log).not.toContain(fake.issuedTokens[0])
  })
})

describe('redact', () => {
  it('replaces resolved values', async () => {
    const resolver = makeResolver()
    await resolver.resolve(accessKeyReference)

    expect(resolver.redact(`S3 rejected key ${accessKey} twice: ${accessKey}`)).toBe('S3 rejected key [secret] twice: [secret]')
    expect(resolver.redact(`not yet resolved: ${secretKey}`)).toBe(`not yet resolved: ${secretKey}`)
  })

  it('replaces the token and secret_id', async () => {
    const resolver = makeResolver({ vault: vaultConfig(approleAuth) })
    await resolver.resolve(accessKeyReference)

    expect(resolver.redact(`id ${secretId}`)).toBe('id [secret]')
    expect(resolver.redact(`token ${fake.issuedTokens[0]}`)).toBe('token [secret]')
  })

  it('replaces escaped forms', async () => {
    const resolver = makeResolver({ env: { PASSWORD: 'pa"ss/word+1' } })
    await resolver.resolve('env:PASSWORD')

    expect(resolver.redact('{"password":"pa\\"ss/word+1"}')).toBe('{"password":"[secret]"}')
    expect(resolver.redact('password=pa%22ss%2Fword%2B1')).toBe('password=[secret]')
  })

  it('replaces the longer value first', async () => {
    const resolver = makeResolver({ env: { SHORT: 'abcd', LONG: 'abcd-efgh' } })
    await resolver.resolve('env:SHORT')
    await resolver.resolve('env:LONG')
    expect(resolver.redact('abcd-efgh abcd')).toBe('[secret] [secret]')
  })

  it('leaves values under 4 characters', async () => {
    const resolver = makeResolver({ env: { ZONE: 'eu1' } })
    await resolver.resolve('env:ZONE')
    expect(resolver.redact('zone eu1')).toBe('zone eu1')
  })
})
