// The validated node configuration and the checks that turn a parsed YAML document into it.
// YAML keys are snake_case, and the fields here are camelCase. Every check throws ConfigError.

import { hostname } from 'node:os'
import { resolve } from 'node:path'

import { readHttpUrl } from './backends.js'
import { describeValue } from './errors.js'
import { FieldReader, isUnset } from './fields.js'
import { readMesh, type MeshConfig } from './mesh.js'
import type { OpendalService } from './opendal.js'
import { readCidrList, readHost, readIpAddress } from './network.js'
import { checkSecretReferences, readSecrets, type SecretsConfig } from './secrets.js'
import { formatSize, parseSize } from './size.js'
import { readVolumes } from './volume.js'

export type VolumeType = 'local' | 'hostPath' | 'seaweedfs' | 'opendal' | 'seal'
export type AccessMode = 'read-only' | 'read-write'
export type StorageClass = 'ephemeral' | 'persistent'

export interface VolumeConfig {
  /** The volume name, which is also its NFS export path `/<name>`. */
  name: string
  /** The storage backend, 'seaweedfs' when the YAML has no `type`. */
  type: VolumeType
  /** The storage class, 'persistent' when the YAML has no `storage_class`. */
  storageClass: StorageClass
  /** Absolute path strictly below /workspace where agents mount the volume. */
  mountPath: string
  accessMode: AccessMode
  /** Quota in bytes, or null for no limit. */
  sizeLimitBytes: number | null
  /** The OpenDAL service (s3, gcs, azblob, webdav, fs, memory), or null for other types. */
  provider: OpendalService | null
  /** Type-specific options with defaults filled in. secret: and env: references stay unresolved. */
  config: Record<string, unknown>
  /** The uid and gid that agents see as the owner of every file. */
  owner: { uid: number; gid: number }
  /** CIDR blocks in `address/prefix` form that may mount this volume. */
  allowedClients: string[]
}

export interface NodeConfig {
  /** The config file path, or 'embedded default'. */
  source: string
  nodeName: string
  /** Absolute directory for node state. */
  dataDir: string
  nfs: {
    /** IP address literal the MOUNT and NFS services listen on. */
    bind: string
    /** TCP port for both services, where 0 picks a free port. */
    port: number
    /** Default for each volume's allowedClients, in `address/prefix` form. */
    allowedClients: string[]
    /** Largest RPC record accepted from a client, in bytes. */
    maxRecordBytes: number
    /** Host name or address printed in mount commands, or null to print the bind address. */
    advertiseHost: string | null
  }
  audit: {
    /** Absolute path of the JSON Lines audit log. */
    path: string
    /** Maximum audit events waiting in memory to be written to the log file. */
    maxPendingEvents: number
  }
  volumes: VolumeConfig[]
  /** The mesh settings, or null when the node takes no part in the mesh. */
  mesh: MeshConfig | null
  seaweedfs: {
    /** The filer of seaweedfs volumes whose config has no filer_url, or null. */
    filerUrl: string | null
  }
  /** The server settings for `secret:` references. `vault` is null when the file has no secrets.vault. */
  secrets: SecretsConfig
}

/** Values from command-line flags. Each one replaces the matching key of the file. */
export interface ConfigOverrides {
  /** Relative paths are resolved against the process working directory. */
  dataDir?: string
  nfsPort?: number
  nfsBind?: string
}

export interface ValidateOptions {
  /** Named in every error message: the config file path or 'embedded default'. */
  source: string
  /** Directory that relative paths in the document are resolved against. */
  baseDir: string
  overrides?: ConfigOverrides
}

export const topLevelKeys = ['node', 'nfs', 'audit', 'volumes', 'mesh', 'secrets', 'seaweedfs'] as const
export const seaweedfsKeys = ['filer_url'] as const
export const nodeKeys = ['name', 'data_dir'] as const
export const nfsKeys = ['bind', 'port', 'allowed_clients', 'max_record_bytes', 'advertise_host'] as const
export const auditKeys = ['path', 'max_pending_events'] as const

export const defaults = {
  dataDir: './.aegis',
  nfsBind: '127.0.0.1',
  nfsPort: 2049,
  allowedClients: ['127.0.0.0/8', '::1/128'],
  /** 4 MiB of READ or WRITE data plus 64 KiB for the RPC and NFS headers. */
  maxRecordBytes: 4 * 1024 * 1024 + 64 * 1024,
  auditFileName: 'audit.jsonl',
  maxPendingEvents: 65536
} as const

/** Accepted values of nfs.max_record_bytes, in bytes. */
export const maxRecordBytesRange = { min: 64 * 1024, max: 64 * 1024 * 1024 } as const

/** Source named in errors about ConfigOverrides values. */
export const overrideSource = 'command line'

const portRange = { min: 0, max: 65535, expected: 'an integer from 1 to 65535, or 0 for a free port' }

/** Validates a parsed YAML document (`undefined` or `null` for an empty file) and applies overrides. */
export function validateConfig(document: unknown, options: ValidateOptions): NodeConfig {
  const reader = new FieldReader(options.source)
  const overrideReader = new FieldReader(overrideSource)
  const overrides = options.overrides ?? {}

  const top = reader.optionalMap(document, '')
  reader.checkKeys(top, '', topLevelKeys)

  const node = reader.optionalMap(top.node, 'node')
  reader.checkKeys(node, 'node', nodeKeys)
  const nodeName = readNodeName(reader, node.name)

  let dataDir = resolve(options.baseDir, readLocalPath(reader, node.data_dir ?? defaults.dataDir, 'node.data_dir'))
  if (overrides.dataDir !== undefined) {
    dataDir = resolve(readLocalPath(overrideReader, overrides.dataDir, 'node.data_dir'))
  }

  const nfs = readNfs(reader, top.nfs)
  if (overrides.nfsBind !== undefined) nfs.bind = readIpAddress(overrideReader, overrides.nfsBind, 'nfs.bind')
  if (overrides.nfsPort !== undefined) nfs.port = overrideReader.integer(overrides.nfsPort, 'nfs.port', portRange)

  const auditMap = reader.optionalMap(top.audit, 'audit')
  reader.checkKeys(auditMap, 'audit', auditKeys)
  const audit = {
    path: isUnset(auditMap.path)
      ? resolve(dataDir, defaults.auditFileName)
      : resolve(options.baseDir, readLocalPath(reader, auditMap.path, 'audit.path')),
    maxPendingEvents: isUnset(auditMap.max_pending_events)
      ? defaults.maxPendingEvents
      : reader.integer(auditMap.max_pending_events, 'audit.max_pending_events', {
          min: 1,
          max: Number.MAX_SAFE_INTEGER,
          expected: 'a positive integer'
        })
  }

  const volumes = readVolumes(reader, top.volumes, nfs.allowedClients)
  const seaweedfs = readSeaweedfsDefaults(reader, top.seaweedfs)
  for (const volume of volumes) {
    if (volume.type === 'seaweedfs' && volume.config.filer_url === undefined && seaweedfs.filerUrl !== null) volume.config.filer_url = seaweedfs.filerUrl
  }
  const mesh = readMesh(reader, top.mesh, options.baseDir, volumes.map((volume) => volume.name))
  for (const entry of mesh?.share ?? []) {
    if (volumes.find((volume) => volume.name === entry.volume)?.type === 'seal') {
      reader.fail('mesh.share', `volume ${entry.volume} is a seal volume of another node; share it from the node that owns it`)
    }
  }
  const secrets = readSecrets(reader, top.secrets, options.baseDir)
  checkSecretReferences(reader, volumes, secrets)
  return { source: options.source, nodeName, dataDir, nfs, audit, volumes, mesh, secrets, seaweedfs }
}

/** Reads the `seaweedfs:` section: the filer that seaweedfs volumes without their own filer_url use. */
function readSeaweedfsDefaults(reader: FieldReader, value: unknown): NodeConfig['seaweedfs'] {
  const map = reader.optionalMap(value, 'seaweedfs')
  reader.checkKeys(map, 'seaweedfs', seaweedfsKeys)
  return { filerUrl: isUnset(map.filer_url) ? null : readHttpUrl(reader, map.filer_url, 'seaweedfs.filer_url') }
}

function readNfs(reader: FieldReader, value: unknown): NodeConfig['nfs'] {
  const map = reader.optionalMap(value, 'nfs')
  reader.checkKeys(map, 'nfs', nfsKeys)

  const bind = isUnset(map.bind) ? defaults.nfsBind : readIpAddress(reader, map.bind, 'nfs.bind')
  const port = isUnset(map.port) ? defaults.nfsPort : reader.integer(map.port, 'nfs.port', portRange)
  const allowedClients = isUnset(map.allowed_clients)
    ? [...defaults.allowedClients]
    : readCidrList(reader, map.allowed_clients, 'nfs.allowed_clients')

  let recordBytes: number = defaults.maxRecordBytes
  if (!isUnset(map.max_record_bytes)) {
    recordBytes = parseSize(map.max_record_bytes, 'nfs.max_record_bytes', reader.source)
    if (recordBytes < maxRecordBytesRange.min || recordBytes > maxRecordBytesRange.max) {
      reader.fail(
        'nfs.max_record_bytes',
        `${describeValue(map.max_record_bytes)} (${recordBytes} bytes) is out of range; ` +
          `use a size from ${formatSize(maxRecordBytesRange.min)} to ${formatSize(maxRecordBytesRange.max)}`
      )
    }
  }

  const advertiseHost = isUnset(map.advertise_host) ? null : readHost(reader, map.advertise_host, 'nfs.advertise_host')
  return { bind, port, allowedClients, maxRecordBytes: recordBytes, advertiseHost }
}

function readNodeName(reader: FieldReader, value: unknown): string {
  const fromHost = isUnset(value)
  const name = fromHost ? hostname() : reader.string(value, 'node.name')
  if (name.length === 0 || name.length > 253 || /[\s\u0000-\u001f\u007f]/.test(name)) {
    const origin = fromHost ? 'the host name ' : ''
    reader.fail('node.name', `${origin}${describeValue(name)} is not a valid node name; use 1 to 253 characters without spaces, such as storage-node-1`)
  }
  return name
}

/** Reads a file system path on the node. The caller resolves relative paths. */
function readLocalPath(reader: FieldReader, value: unknown, field: string): string {
  const path = reader.string(value, field)
  if (path.startsWith('~')) {
    reader.fail(field, `${describeValue(path)} starts with "~", which is not expanded; write the full path`)
  }
  return path
}
