// The `secrets:` section: good values, defaults, and each bad value with the field named. Errors
// about the token and the AppRole secret_id must never show the value.

import { describe, expect, it } from 'vitest'

import { baseDir, expectConfigError, oneVolume, parse } from './helpers.js'

const address = 'https://bao.internal:8200'
const inlineToken = 's.inline-token-value-0001'
const inlineSecretId = 'inline-secret-id-value-0002'

/** Builds a file with one local volume and a `secrets.vault` section made of `lines`, each one key. */
function withVault(...lines: string[]): string {
  return `${oneVolume()}secrets:\n  vault:\n${lines.map((line) => `    ${line}\n`).join('')}`
}

/** Builds a file with an opendal volume whose access key is `reference`, with `header` before it. */
function opendalVolume(reference: string, header = ''): string {
  return oneVolume({ type: 'opendal', provider: 's3', config: `{bucket: b, access_key_id: "${reference}"}` }, header)
}

describe('secrets section', () => {
  it('has no vault when absent', () => {
    expect(parse(oneVolume()).secrets).toEqual({ vault: null })
  })

  it('has no vault when empty', () => {
    expect(parse(`${oneVolume()}secrets:\n`).secrets).toEqual({ vault: null })
    expect(parse(`${oneVolume()}secrets: {}\n`).secrets).toEqual({ vault: null })
  })

  it('fills defaults', () => {
    expect(parse(withVault(`address: ${address}`, 'token: env:VAULT_TOKEN')).secrets.vault).toEqual({
      address,
      mount: 'secret',
      namespace: null,
      auth: { method: 'token', token: { kind: 'env', name: 'VAULT_TOKEN' } },
      timeoutMs: 5000
    })
  })

  it('reads every key', () => {
    const vault = parse(withVault('address: http://127.0.0.1:8200/', 'mount: team-a/kv', 'namespace: admin/team-a', `token: "${inlineToken}"`, 'timeout: 750ms')).secrets.vault
    expect(vault).toEqual({
      address: 'http://127.0.0.1:8200',
      mount: 'team-a/kv',
      namespace: 'admin/team-a',
      auth: { method: 'token', token: { kind: 'literal', value: inlineToken } },
      timeoutMs: 750
    })
  })

  it('keeps an address path prefix', () => {
    expect(parse(withVault('address: https://proxy.internal/bao//', 'token: env:T')).secrets.vault?.address).toBe('https://proxy.internal/bao')
  })

  it('reads approle', () => {
    const vault = parse(withVault(`address: ${address}`, 'approle:', '  role_id: aegis-node-role', '  secret_id: file:secrets/secret-id')).secrets.vault
    expect(vault?.auth).toEqual({
      method: 'approle',
      roleId: { kind: 'literal', value: 'aegis-node-role' },
      secretId: { kind: 'file', path: `${baseDir}/secrets/secret-id` }
    })
  })

  it('keeps an absolute file path', () => {
    const vault = parse(withVault(`address: ${address}`, 'token: file:/run/secrets/vault-token')).secrets.vault
    expect(vault?.auth).toEqual({ method: 'token', token: { kind: 'file', path: '/run/secrets/vault-token' } })
  })

  it('reads env references in approle', () => {
    const vault = parse(withVault(`address: ${address}`, 'approle: {role_id: env:ROLE_ID, secret_id: env:SECRET_ID}')).secrets.vault
    expect(vault?.auth).toEqual({ method: 'approle', roleId: { kind: 'env', name: 'ROLE_ID' }, secretId: { kind: 'env', name: 'SECRET_ID' } })
  })
})

describe('secrets errors', () => {
  it('rejects an unknown key', () => {
    expectConfigError(`${oneVolume()}secrets:\n  vualt: {}\n`, 'secrets.vualt', 'did you mean "vault"?')
    expectConfigError(withVault(`address: ${address}`, 'token: env:T', 'mount_path: kv'), 'secrets.vault.mount_path', 'unknown key')
    expectConfigError(withVault(`address: ${address}`, 'approle: {role_id: r, secret_id: s, mount: x}'), 'secrets.vault.approle.mount', 'unknown key')
  })

  it('rejects secrets as a list', () => {
    expectConfigError(`${oneVolume()}secrets: [vault]\n`, 'secrets', 'expected a map')
  })

  it('rejects vault as a string', () => {
    expectConfigError(`${oneVolume()}secrets:\n  vault: ${address}\n`, 'secrets.vault', 'expected a map')
  })

  it('requires an address', () => {
    expectConfigError(withVault('token: env:T'), 'secrets.vault.address', 'missing', 'https://bao.internal:8200')
  })

  it.each(['bao.internal:8200', 'ftp://bao.internal', 'not a url', 'file:///etc/bao'])('rejects address %s', (value) => {
    expectConfigError(withVault(`address: "${value}"`, 'token: env:T'), 'secrets.vault.address', `"${value}"`, 'not an http or https URL')
  })

  it('rejects an address with a password without showing it', () => {
    const error = expectConfigError(withVault('address: https://user:hunter2-pass@bao.internal', 'token: env:T'), 'secrets.vault.address', 'user name or password')
    expect(error.message).not.toContain('hunter2-pass')
  })

  it('rejects an address with a query', () => {
    expectConfigError(withVault('address: "https://bao.internal/?x=1"', 'token: env:T'), 'secrets.vault.address', 'query or fragment')
  })

  it('rejects a metadata-service address, which would receive the token', () => {
    expectConfigError(withVault('address: "http://[::ffff:169.254.169.254]"', 'token: env:T'), 'secrets.vault.address', 'metadata service')
  })

  it.each(['/secret', 'secret/', 'a//b', 'kv v2'])('rejects mount %s', (value) => {
    expectConfigError(withVault(`address: ${address}`, 'token: env:T', `mount: "${value}"`), 'secrets.vault.mount', `"${value}"`, 'not a mount path')
  })

  it('rejects a bad namespace', () => {
    expectConfigError(withVault(`address: ${address}`, 'token: env:T', 'namespace: /admin/'), 'secrets.vault.namespace', '"/admin/"', 'not a mount path')
  })

  it.each([
    ['5', 'not a duration'],
    ['5 s', 'not a duration'],
    ['50ms', 'out of range'],
    ['2m', 'out of range']
  ])('rejects timeout %s', (value, fragment) => {
    expectConfigError(withVault(`address: ${address}`, 'token: env:T', `timeout: "${value}"`), 'secrets.vault.timeout', fragment)
  })

  it('rejects both token and approle', () => {
    const error = expectConfigError(
      withVault(`address: ${address}`, `token: "${inlineToken}"`, `approle: {role_id: r, secret_id: "${inlineSecretId}"}`),
      'secrets.vault.approle',
      'token and approle are both set'
    )
    expect(error.message).not.toContain(inlineToken)
    expect(error.message).not.toContain(inlineSecretId)
  })

  it('rejects neither token nor approle', () => {
    expectConfigError(withVault(`address: ${address}`), 'secrets.vault', 'set token', 'approle')
  })

  it.each(['role_id', 'secret_id'])('requires approle %s', (key) => {
    const other = key === 'role_id' ? 'secret_id' : 'role_id'
    expectConfigError(withVault(`address: ${address}`, `approle: {${other}: x}`), `secrets.vault.approle.${key}`, 'missing', 'role_id and secret_id')
  })

  it('rejects approle as a string', () => {
    expectConfigError(withVault(`address: ${address}`, 'approle: aegis'), 'secrets.vault.approle', 'expected a map')
  })

  // Each case writes a bad token or secret_id that contains a marker, which no message may show.
  const secretCases: Array<[string, string, string, string]> = [
    ['number token', 'token: 8675309123', 'secrets.vault.token', 'expected a string, got a number'],
    ['empty token', 'token: ""', 'secrets.vault.token', 'empty string'],
    ['control character', 'token: "s.8675309123\\tx"', 'secrets.vault.token', 'control character'],
    ['bad env reference', 'token: "env:8675309123"', 'secrets.vault.token', 'not a valid environment reference'],
    ['empty file reference', 'token: "file:"', 'secrets.vault.token', 'names no file'],
    ['home file path', 'token: "file:~/8675309123"', 'secrets.vault.token', 'starts with "~"'],
    ['list token', 'token: [8675309123]', 'secrets.vault.token', 'expected a string, got a list'],
    ['number secret_id', 'approle: {role_id: r, secret_id: 8675309123}', 'secrets.vault.approle.secret_id', 'expected a string, got a number'],
    ['secret_id control character', 'approle: {role_id: r, secret_id: "8675309123\\u0007"}', 'secrets.vault.approle.secret_id', 'control character'],
    ['bad secret_id env reference', 'approle: {role_id: r, secret_id: "env:8675309123"}', 'secrets.vault.approle.secret_id', 'not a valid environment reference']
  ]
  it.each(secretCases)('%s hides the value', (_, line, field, fragment) => {
    const error = expectConfigError(withVault(`address: ${address}`, line), field, fragment)
    expect(error.message).not.toContain('8675309123')
  })

  it('shows a bad role_id', () => {
    expectConfigError(withVault(`address: ${address}`, 'approle: {role_id: 42, secret_id: s}'), 'secrets.vault.approle.role_id', 'got 42')
  })
})

describe('secret references in volumes', () => {
  it('need secrets.vault', () => {
    const error = expectConfigError(opendalVolume('secret:aws/s3-reader/access-key'), 'volumes[0].config.access_key_id', 'volume "data"', '"secret:aws/s3-reader/access-key"', 'add secrets.vault')
    expect(error.message).toContain('no secrets.vault section')
  })

  it('need secrets.vault, not only secrets', () => {
    expectConfigError(opendalVolume('secret:aws/s3-reader/access-key', 'secrets: {}\n'), 'volumes[0].config.access_key_id', 'no secrets.vault section')
  })

  it('name the right volume', () => {
    const text = `volumes:
  - name: scratch
    type: local
    mount_path: /workspace/scratch
    access_mode: read-write
  - name: datasets
    type: opendal
    provider: s3
    mount_path: /workspace/datasets
    access_mode: read-only
    config: {bucket: b, secret_access_key: "secret:aws/reader/secret-key"}
`
    expectConfigError(text, 'volumes[1].config.secret_access_key', 'volume "datasets"')
  })

  it('pass with secrets.vault', () => {
    const config = parse(opendalVolume('secret:aws/s3-reader/access-key', `secrets:\n  vault: {address: ${address}, token: env:VAULT_TOKEN}\n`))
    expect(config.volumes[0].config.access_key_id).toBe('secret:aws/s3-reader/access-key')
    expect(config.secrets.vault?.address).toBe(address)
  })

  it('env references need no vault', () => {
    expect(parse(opendalVolume('env:AWS_ACCESS_KEY_ID')).volumes[0].config.access_key_id).toBe('env:AWS_ACCESS_KEY_ID')
  })
})
