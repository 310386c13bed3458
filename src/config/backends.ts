// The type-specific `config` map of a volume. The checks here are the ones that need no I/O:
// whether a host directory exists is checked when the node starts.

import { describeKind, describeValue } from './errors.js'
import { childField, closestKey, isUnset } from './fields.js'
import type { FieldReader, PlainMap } from './fields.js'
import { readAbsolutePath } from './paths.js'
import { checkOptionValue, isMetadataHost, opendalServices, optionAliases, optionKindOf, parseHttpUrl, withoutUserInfo, type OpendalService } from './opendal.js'
import type { VolumeType } from './schema.js'

export const hostPathConfigKeys = ['path'] as const
export const seaweedfsConfigKeys = ['filer_url', 'path', 'collection', 'replication'] as const
export const sealConfigKeys = ['node_id', 'remote_volume_id'] as const

/**
 * Validates the `config` map of one volume and returns it with defaults filled in
 * (a seaweedfs volume gets `path: /volumes/<name>`).
 */
export function readBackendConfig(
  reader: FieldReader,
  type: VolumeType,
  value: unknown,
  field: string,
  volumeName: string,
  service: OpendalService | null
): Record<string, unknown> {
  const config = reader.optionalMap(value, field)
  switch (type) {
    case 'local':
      return readLocalConfig(reader, config, field, volumeName)
    case 'hostPath':
      return readHostPathConfig(reader, config, field)
    case 'seaweedfs':
      return readSeaweedfsConfig(reader, config, field, volumeName)
    case 'opendal':
      return readOpendalConfig(reader, config, field, service!)
    case 'seal':
      return readSealConfig(reader, config, field)
  }
}

function readLocalConfig(reader: FieldReader, config: PlainMap, field: string, volumeName: string): Record<string, unknown> {
  const [firstKey] = Object.keys(config)
  if (firstKey !== undefined) {
    reader.fail(
      childField(field, firstKey),
      `local volumes take no config keys, but ${JSON.stringify(firstKey)} is set; remove config, ` +
        `because the node stores the data under <data_dir>/volumes/${volumeName}`
    )
  }
  return {}
}

function readHostPathConfig(reader: FieldReader, config: PlainMap, field: string): Record<string, unknown> {
  reader.checkKeys(config, field, hostPathConfigKeys)
  const pathField = childField(field, 'path')
  if (isUnset(config.path)) {
    reader.fail(pathField, 'missing; hostPath volumes need config.path, the absolute host directory to export')
  }
  const path = readAbsolutePath(reader, config.path, pathField)
  if (path === '/') {
    reader.fail(pathField, '"/" would export the whole host file system; name the directory to export, such as /srv/agent-data')
  }
  return { path }
}

function readSeaweedfsConfig(reader: FieldReader, config: PlainMap, field: string, volumeName: string): Record<string, unknown> {
  reader.checkKeys(config, field, seaweedfsConfigKeys)
  const result: Record<string, unknown> = {}

  if (!isUnset(config.filer_url)) {
    result.filer_url = readHttpUrl(reader, config.filer_url, childField(field, 'filer_url'))
  }

  result.path = isUnset(config.path) ? `/volumes/${volumeName}` : readAbsolutePath(reader, config.path, childField(field, 'path'))

  if (!isUnset(config.collection)) {
    result.collection = reader.string(config.collection, childField(field, 'collection'))
  }

  if (!isUnset(config.replication)) {
    const replicationField = childField(field, 'replication')
    if (typeof config.replication === 'number') {
      reader.fail(replicationField, `expected a string, got ${describeKind(config.replication)}; put the value in quotes, such as "001"`)
    }
    const replication = reader.string(config.replication, replicationField)
    if (!/^[0-9]{3}$/.test(replication)) {
      reader.fail(replicationField, `${describeValue(replication)} is not a SeaweedFS replication setting; write three digits, such as "000" or "001"`)
    }
    result.replication = replication
  }
  return result
}

export function readHttpUrl(reader: FieldReader, value: unknown, field: string): string {
  if (typeof value === 'string' && /[\u0000-\u001f\u007f]/.test(value)) {
    reader.fail(field, `${describeValue(withoutUserInfo(value))} contains a control character; remove it`)
  }
  const text = reader.string(value, field)
  const url = parseHttpUrl(text)
  if (url === null) {
    reader.fail(field, `${describeValue(withoutUserInfo(text))} is not an http or https URL; write the filer address, such as http://127.0.0.1:8888`)
  }
  // The text may contain a password, so this message leaves it out.
  if (url.username !== '' || url.password !== '') {
    reader.fail(field, 'the URL contains a user name or password; remove them, because the node sends no credentials to the filer')
  }
  if (isMetadataHost(url.hostname)) {
    reader.fail(field, `${describeValue(text)} is a cloud metadata service or a link-local address; write the filer address`)
  }
  return text
}

/** `secret:<path>/<key>`: a path of one or more segments, then the key after the last "/". */
export const secretReferencePattern = /^secret:[^/\s]+(?:\/[^/\s]+)+$/
/** `env:NAME`, where NAME is a POSIX-style environment variable name. */
export const envReferencePattern = /^env:[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Checks the options of an opendal volume: each name must be one that `service` takes (OpenDAL
 * itself ignores unknown names), each value a string, and each value written in the file must
 * suit its option. `secret:<path>/<key>` and `env:NAME` references are kept as written; their
 * values are checked when the node resolves them. Messages about a credential option name its
 * type only, because the file may hold the credential inline. A malformed reference is shown,
 * since it names a secret rather than containing one.
 */
function readOpendalConfig(reader: FieldReader, config: PlainMap, field: string, service: OpendalService): Record<string, unknown> {
  const spec = opendalServices[service]
  const result: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    const optionField = childField(field, key)
    const kind = optionKindOf(service, key)
    if (kind === null) {
      const alias = optionAliases[key]
      const suggestion = alias !== undefined && Object.hasOwn(spec.options, alias) ? alias : closestKey(key, Object.keys(spec.options))
      const hint = suggestion === null ? '' : `did you mean "${suggestion}"? `
      reader.fail(optionField, `the ${service} service has no option ${JSON.stringify(key)}; ${hint}use ${Object.keys(spec.options).join(', ')}`)
    }
    if (typeof value !== 'string') {
      reader.fail(optionField, `expected a string, got ${describeTypeOnly(value)}; opendal options are strings, so put the value in quotes`)
    }
    if (value.startsWith('secret:') && !secretReferencePattern.test(value)) {
      reader.fail(optionField, `${describeValue(value)} is not a valid secret reference; write secret:<path>/<key>, such as secret:aws/s3-reader/access-key`)
    }
    if (value.startsWith('env:') && !envReferencePattern.test(value)) {
      reader.fail(optionField, `${describeValue(value)} is not a valid environment reference; write env:NAME, such as env:AWS_ACCESS_KEY_ID`)
    }
    if (!isReference(value)) {
      const problem = checkOptionValue(service, key, kind, value)
      if (problem !== null) reader.fail(optionField, problem)
    }
    result[key] = value
  }
  for (const [key, example] of Object.entries(spec.required)) {
    if (result[key] === undefined) reader.fail(childField(field, key), `missing; ${service} volumes need ${key}, such as ${example}`)
  }
  const credentials = spec.credentials
  if (credentials !== undefined && !credentials.keys.some((key) => result[key] !== undefined)) {
    reader.fail(field, `${service} volumes need ${credentials.keys.join(' or ')}, because ${credentials.reason}; set one, such as ${credentials.keys[0]}: "secret:azure/checkpoints/${credentials.keys[0]}"`)
  }
  return result
}

/** True for a string that is a whole `secret:<path>/<key>` or `env:NAME` reference. */
export function isReference(value: unknown): value is string {
  return typeof value === 'string' && (secretReferencePattern.test(value) || envReferencePattern.test(value))
}

/** Names the type of a value without showing the value itself. */
export function describeTypeOnly(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a map'
  return `a ${typeof value}`
}

function readSealConfig(reader: FieldReader, config: PlainMap, field: string): Record<string, unknown> {
  reader.checkKeys(config, field, sealConfigKeys)
  const result: Record<string, unknown> = {}
  for (const key of sealConfigKeys) {
    const keyField = childField(field, key)
    if (isUnset(config[key])) {
      reader.fail(keyField, `missing; seal volumes need config.node_id (the remote node) and config.remote_volume_id (its volume)`)
    }
    result[key] = reader.string(config[key], keyField)
  }
  return result
}
