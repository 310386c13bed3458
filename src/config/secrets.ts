// The `secrets:` section: where the node resolves `secret:<path>/<key>` references in volume
// configs. Today that is one OpenBao or Vault server with a KV version 2 engine. The token and
// the AppRole secret_id are credentials, so no message here ever shows their values.

import { isAbsolute, resolve } from 'node:path'

import { describeTypeOnly, secretReferencePattern } from './backends.js'
import { describeValue } from './errors.js'
import { childField, isUnset, type FieldReader } from './fields.js'
import { readDuration } from './mesh.js'
import { isMetadataHost, parseHttpUrl } from './opendal.js'
import type { VolumeConfig } from './schema.js'

export const secretsKeys = ['vault'] as const
export const vaultKeys = ['address', 'mount', 'namespace', 'token', 'approle', 'timeout'] as const
export const approleKeys = ['role_id', 'secret_id'] as const

/**
 * The source of a credential: the config file itself, an environment variable (`env:NAME`) or a
 * file (`file:PATH`). Variables and files are read when the node logs in.
 */
export type CredentialSource =
  | { kind: 'literal'; value: string }
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }

export type VaultAuthConfig =
  | { method: 'token'; token: CredentialSource }
  | { method: 'approle'; roleId: CredentialSource; secretId: CredentialSource }

export interface VaultConfig {
  /** Base URL of the server, http or https, without a trailing slash, such as https://bao.internal:8200. */
  address: string
  /** Path of the KV version 2 engine, without leading or trailing slashes. */
  mount: string
  /** Namespace sent as X-Vault-Namespace, or null for the root namespace. */
  namespace: string | null
  auth: VaultAuthConfig
  /** Time one HTTP request to the server may take. */
  timeoutMs: number
}

export interface SecretsConfig {
  /** The server that resolves `secret:` references, or null when none is configured. */
  vault: VaultConfig | null
}

export const vaultDefaults = {
  mount: 'secret',
  timeoutMs: 5000
} as const

/** Accepted values of secrets.vault.timeout, in milliseconds. */
export const vaultTimeoutRange = { minMs: 100, maxMs: 60_000 } as const

const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/
const mountPattern = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/

/** Reads the `secrets:` section. `baseDir` resolves relative `file:` paths. */
export function readSecrets(reader: FieldReader, value: unknown, baseDir: string): SecretsConfig {
  const map = reader.optionalMap(value, 'secrets')
  reader.checkKeys(map, 'secrets', secretsKeys)
  if (isUnset(map.vault)) return { vault: null }
  return { vault: readVault(reader, map.vault, baseDir) }
}

function readVault(reader: FieldReader, value: unknown, baseDir: string): VaultConfig {
  const map = reader.map(value, 'secrets.vault')
  reader.checkKeys(map, 'secrets.vault', vaultKeys)

  if (isUnset(map.address)) {
    reader.fail('secrets.vault.address', 'missing; give the URL of the OpenBao or Vault server, such as https://bao.internal:8200')
  }
  const address = readAddress(reader, map.address, 'secrets.vault.address')
  const mount = isUnset(map.mount) ? vaultDefaults.mount : readMountPath(reader, map.mount, 'secrets.vault.mount')
  const namespace = isUnset(map.namespace) ? null : readMountPath(reader, map.namespace, 'secrets.vault.namespace')
  const auth = readAuth(reader, map, baseDir)
  const timeoutMs = isUnset(map.timeout) ? vaultDefaults.timeoutMs : readDuration(reader, map.timeout, 'secrets.vault.timeout', vaultTimeoutRange)

  return { address, mount, namespace, auth, timeoutMs }
}

function readAuth(reader: FieldReader, map: Record<string, unknown>, baseDir: string): VaultAuthConfig {
  const hasToken = !isUnset(map.token)
  const hasApprole = !isUnset(map.approle)
  if (hasToken && hasApprole) {
    reader.fail('secrets.vault.approle', 'token and approle are both set; keep the one the node should log in with and remove the other')
  }
  if (!hasToken && !hasApprole) {
    reader.fail('secrets.vault', 'no way to log in; set token (such as token: env:VAULT_TOKEN) or approle with role_id and secret_id')
  }
  if (hasToken) {
    return { method: 'token', token: readCredential(reader, map.token, 'secrets.vault.token', baseDir, true) }
  }

  const approle = reader.map(map.approle, 'secrets.vault.approle')
  reader.checkKeys(approle, 'secrets.vault.approle', approleKeys)
  for (const key of approleKeys) {
    if (isUnset(approle[key])) {
      reader.fail(childField('secrets.vault.approle', key), 'missing; AppRole login needs both role_id and secret_id')
    }
  }
  return {
    method: 'approle',
    roleId: readCredential(reader, approle.role_id, 'secrets.vault.approle.role_id', baseDir, false),
    secretId: readCredential(reader, approle.secret_id, 'secrets.vault.approle.secret_id', baseDir, true)
  }
}

/** Reads an http or https URL without credentials, query or fragment, and drops trailing slashes. */
function readAddress(reader: FieldReader, value: unknown, field: string): string {
  const text = reader.string(value, field)
  const url = parseHttpUrl(text)
  if (url === null) {
    reader.fail(field, `${describeValue(text)} is not an http or https URL; write the server address, such as https://bao.internal:8200`)
  }
  // The text may contain a password, so this message leaves it out.
  if (url.username !== '' || url.password !== '') {
    reader.fail(field, 'the URL contains a user name or password; remove it, because the node logs in with token or approle')
  }
  if (isMetadataHost(url.hostname)) {
    reader.fail(field, `${describeValue(text)} is a cloud metadata service or a link-local address, which would receive the node's token; write the OpenBao or Vault address`)
  }
  if (url.search !== '' || url.hash !== '') {
    reader.fail(field, `${describeValue(text)} has a query or fragment; write only the scheme, host, port and an optional path prefix`)
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

/** Reads a mount or namespace path such as `secret` or `team-a/kv`. */
function readMountPath(reader: FieldReader, value: unknown, field: string): string {
  const text = reader.string(value, field)
  if (!mountPattern.test(text)) {
    reader.fail(field, `${describeValue(text)} is not a mount path; write names of letters, digits, ".", "_" or "-" joined by "/", without a leading or trailing "/", such as secret or team-a/kv`)
  }
  return text
}

/**
 * Reads a credential written inline, as `env:NAME` or as `file:PATH`. When `secret` is true the
 * messages name the field but never show the value, because an inline value is a credential.
 */
function readCredential(reader: FieldReader, value: unknown, field: string, baseDir: string, secret: boolean): CredentialSource {
  if (typeof value !== 'string') {
    const got = secret ? describeTypeOnly(value) : describeValue(value)
    reader.fail(field, `expected a string, got ${got}; write the value in quotes, or env:NAME or file:PATH`)
  }
  if (value === '') reader.fail(field, 'the value is an empty string; give a value, env:NAME or file:PATH')
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    const shown = secret ? 'the value' : describeValue(value)
    reader.fail(field, `${shown} contains a control character; remove it`)
  }

  if (value.startsWith('env:')) {
    const name = value.slice('env:'.length)
    if (!envNamePattern.test(name)) {
      const shown = secret ? 'the value' : describeValue(value)
      reader.fail(field, `${shown} is not a valid environment reference; write env:NAME, such as env:VAULT_TOKEN`)
    }
    return { kind: 'env', name }
  }

  if (value.startsWith('file:')) {
    const path = value.slice('file:'.length)
    if (path === '') reader.fail(field, 'file: names no file; write file:PATH, such as file:/run/secrets/vault-token')
    if (path.startsWith('~')) reader.fail(field, 'the file path starts with "~", which is not expanded; write the full path')
    return { kind: 'file', path: isAbsolute(path) ? path : resolve(baseDir, path) }
  }

  return { kind: 'literal', value }
}

/**
 * Checks that every volume using a `secret:` reference has a server to resolve it. `env:`
 * references need none.
 */
export function checkSecretReferences(reader: FieldReader, volumes: readonly VolumeConfig[], secrets: SecretsConfig): void {
  if (secrets.vault !== null) return
  volumes.forEach((volume, index) => {
    for (const [key, value] of Object.entries(volume.config)) {
      if (typeof value !== 'string' || !secretReferencePattern.test(value)) continue
      reader.fail(
        childField(`volumes[${index}].config`, key),
        `volume ${describeValue(volume.name)} uses the secret reference ${describeValue(value)}, but the config has no secrets.vault section; ` +
          'add secrets.vault with the OpenBao or Vault address and a way to log in, or use env:NAME instead'
      )
    }
  })
}
