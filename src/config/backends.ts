// The type-specific `config` map of a volume. The checks here are the ones that need no I/O:
// whether a host directory exists is checked when the node starts.

import { describeKind, describeValue } from './errors.js'
import { childField, isUnset } from './fields.js'
import type { FieldReader, PlainMap } from './fields.js'
import { readAbsolutePath } from './paths.js'
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
  volumeName: string
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
      return readOpendalConfig(reader, config, field)
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

function readHttpUrl(reader: FieldReader, value: unknown, field: string): string {
  const text = reader.string(value, field)
  let url: URL | null = null
  try {
    url = new URL(text)
  } catch {
    url = null
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    reader.fail(field, `${describeValue(text)} is not an http or https URL; write the filer address, such as http://127.0.0.1:8888`)
  }
  return text
}

/** `secret:<path>/<key>`: a path of one or more segments, then the key after the last "/". */
export const secretReferencePattern = /^secret:[^/\s]+(?:\/[^/\s]+)+$/
/** `env:NAME`, where NAME is a POSIX-style environment variable name. */
export const envReferencePattern = /^env:[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Checks that every opendal option is a string. `secret:<path>/<key>` and `env:NAME` references
 * are kept as written and resolved by the backend. The message for a value that is not a string
 * names only its type, because an option may contain a credential written inline. A malformed
 * reference is shown, since it names a secret rather than containing one.
 */
function readOpendalConfig(reader: FieldReader, config: PlainMap, field: string): Record<string, unknown> {
  // TODO: check option names against the chosen provider. Any name is accepted today.
  const result: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    const optionField = childField(field, key)
    if (typeof value !== 'string') {
      reader.fail(optionField, `expected a string, got ${describeTypeOnly(value)}; opendal options are strings, so put the value in quotes`)
    }
    if (value.startsWith('secret:') && !secretReferencePattern.test(value)) {
      reader.fail(optionField, `${describeValue(value)} is not a valid secret reference; write secret:<path>/<key>, such as secret:aws/s3-reader/access-key`)
    }
    if (value.startsWith('env:') && !envReferencePattern.test(value)) {
      reader.fail(optionField, `${describeValue(value)} is not a valid environment reference; write env:NAME, such as env:AWS_ACCESS_KEY_ID`)
    }
    result[key] = value
  }
  return result
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
