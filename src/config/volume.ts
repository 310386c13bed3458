// The `volumes:` list: each volume's common keys, then the checks across volumes
// (unique names, mount paths that do not overlap).

import { readBackendConfig } from './backends.js'
import { describeKind, describeValue } from './errors.js'
import { childField, isUnset } from './fields.js'
import type { FieldReader } from './fields.js'
import { readCidrList } from './network.js'
import { pathsOverlap, readMountPath } from './paths.js'
import type { AccessMode, StorageClass, VolumeConfig, VolumeType } from './schema.js'
import type { OpendalService } from './opendal.js'
import { parseSize } from './size.js'

export const volumeKeys = [
  'name',
  'type',
  'storage_class',
  'mount_path',
  'access_mode',
  'size_limit',
  'provider',
  'config',
  'owner',
  'allowed_clients'
] as const

export const volumeTypes: readonly VolumeType[] = ['local', 'hostPath', 'seaweedfs', 'opendal', 'seal']
export const accessModes: readonly AccessMode[] = ['read-only', 'read-write']
export const storageClasses: readonly StorageClass[] = ['ephemeral', 'persistent']
export const opendalProviders: readonly OpendalService[] = ['s3', 'gcs', 'azblob', 'webdav', 'fs', 'memory']

/** The backend used when a volume has no `type`. */
export const defaultVolumeType: VolumeType = 'seaweedfs'
export const defaultOwner = { uid: 1000, gid: 1000 } as const
/** The largest uid or gid, because chown(2) reads 2^32-1 ((uid_t)-1) as "leave unchanged". */
export const maxOwnerId = 2 ** 32 - 2

const volumeNamePattern = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/

/** Reads and cross-checks the `volumes:` list. `defaultClients` is `nfs.allowed_clients`. */
export function readVolumes(reader: FieldReader, value: unknown, defaultClients: readonly string[]): VolumeConfig[] {
  const noVolumes = 'no volumes configured; a node without volumes serves nothing, so add at least one entry under volumes:'
  if (isUnset(value)) reader.fail('volumes', noVolumes)
  const items = reader.list(value, 'volumes')
  if (items.length === 0) reader.fail('volumes', noVolumes)

  const volumes = items.map((item, index) => readVolume(reader, item, `volumes[${index}]`, defaultClients))
  checkUniqueNames(reader, volumes)
  checkMountPathsApart(reader, volumes)
  return volumes
}

function readVolume(reader: FieldReader, value: unknown, field: string, defaultClients: readonly string[]): VolumeConfig {
  const map = reader.map(value, field)
  reader.checkKeys(map, field, volumeKeys)

  const name = readVolumeName(reader, map.name, childField(field, 'name'))
  const type = isUnset(map.type) ? defaultVolumeType : readChoice(reader, map.type, childField(field, 'type'), volumeTypes, 'volume type')
  const storageClass = isUnset(map.storage_class)
    ? 'persistent'
    : readChoice(reader, map.storage_class, childField(field, 'storage_class'), storageClasses, 'storage class')

  const mountPathField = childField(field, 'mount_path')
  if (isUnset(map.mount_path)) {
    reader.fail(mountPathField, 'missing; every volume needs mount_path, the directory below /workspace where agents see it')
  }
  const mountPath = readMountPath(reader, map.mount_path, mountPathField)

  const accessMode = readAccessMode(reader, map.access_mode, childField(field, 'access_mode'))
  const sizeLimitBytes = isUnset(map.size_limit) ? null : parseSize(map.size_limit, childField(field, 'size_limit'), reader.source)
  if (type === 'seal' && sizeLimitBytes !== null) {
    reader.fail(childField(field, 'size_limit'), 'a seal volume is held to the size_limit its owner node sets; remove size_limit here and set it on the owner')
  }
  const provider = readProvider(reader, map.provider, childField(field, 'provider'), type)
  const config = readBackendConfig(reader, type, map.config, childField(field, 'config'), name, provider)
  const owner = readOwner(reader, map.owner, childField(field, 'owner'))
  const allowedClients = isUnset(map.allowed_clients)
    ? [...defaultClients]
    : readCidrList(reader, map.allowed_clients, childField(field, 'allowed_clients'))

  return { name, type, storageClass, mountPath, accessMode, sizeLimitBytes, provider, config, owner, allowedClients }
}

function readVolumeName(reader: FieldReader, value: unknown, field: string): string {
  if (isUnset(value)) reader.fail(field, 'missing; every volume needs a name, which is also its NFS export path /<name>')
  const name = reader.string(value, field)
  if (!volumeNamePattern.test(name)) {
    reader.fail(
      field,
      `${describeValue(name)} is not a valid volume name; use 1 to 63 characters of lowercase letters, digits, ` +
        '"-", "_" and ".", starting and ending with a letter or digit'
    )
  }
  return name
}

/** Reads one of `choices`, matched exactly. A case-insensitive match only adds a hint to the error. */
function readChoice<T extends string>(reader: FieldReader, value: unknown, field: string, choices: readonly T[], valueKind: string): T {
  const accepted = `use one of ${choices.join(', ')}`
  if (typeof value !== 'string') reader.fail(field, `expected a ${valueKind}, got ${describeKind(value)}; ${accepted}`)
  const match = choices.find((choice) => choice === value)
  if (match !== undefined) return match

  const caseMatch = choices.find((choice) => choice.toLowerCase() === value.toLowerCase())
  const hint = caseMatch === undefined ? '' : ` (did you mean ${caseMatch}? values are case-sensitive)`
  return reader.fail(field, `${describeValue(value)} is not a valid ${valueKind}; ${accepted}${hint}`)
}

/** Reads access_mode, which has no default: "ro", "rw" and other spellings are errors. */
function readAccessMode(reader: FieldReader, value: unknown, field: string): AccessMode {
  const accepted = 'write read-only or read-write'
  if (isUnset(value)) reader.fail(field, `missing; every volume needs an explicit access mode, so ${accepted}`)
  if (typeof value !== 'string') reader.fail(field, `expected an access mode, got ${describeKind(value)}; ${accepted}`)
  if (value === 'read-only' || value === 'read-write') return value

  const letters = value.toLowerCase().replace(/[^a-z]/g, '')
  let hint = ''
  if (letters === 'ro' || letters === 'readonly') hint = ' (did you mean read-only?)'
  if (letters === 'rw' || letters === 'readwrite') hint = ' (did you mean read-write?)'
  return reader.fail(field, `${describeValue(value)} is not a valid access mode; ${accepted}, exactly as shown${hint}`)
}

function readProvider(reader: FieldReader, value: unknown, field: string, type: VolumeType): OpendalService | null {
  if (type !== 'opendal') {
    if (isUnset(value)) return null
    reader.fail(field, `provider ${describeValue(value)} is only used by opendal volumes, and this volume has type ${type}; remove provider or set type: opendal`)
  }
  if (isUnset(value)) reader.fail(field, `missing; opendal volumes need a provider, one of ${opendalProviders.join(', ')}`)
  return readChoice(reader, value, field, opendalProviders, 'opendal provider')
}

function readOwner(reader: FieldReader, value: unknown, field: string): { uid: number; gid: number } {
  if (isUnset(value)) return { ...defaultOwner }
  const map = reader.map(value, field)
  reader.checkKeys(map, field, ['uid', 'gid'])
  const range = { min: 0, max: maxOwnerId, expected: `an integer from 0 to ${maxOwnerId}` }

  const ids = { uid: 0, gid: 0 }
  for (const key of ['uid', 'gid'] as const) {
    const idField = childField(field, key)
    if (isUnset(map[key])) reader.fail(idField, `missing; owner needs both uid and gid, such as {uid: 1000, gid: 1000}`)
    ids[key] = reader.integer(map[key], idField, range)
  }
  return ids
}

function checkUniqueNames(reader: FieldReader, volumes: readonly VolumeConfig[]): void {
  const firstIndex = new Map<string, number>()
  volumes.forEach((volume, index) => {
    const earlier = firstIndex.get(volume.name)
    if (earlier !== undefined) {
      reader.fail(
        `volumes[${index}].name`,
        `${describeValue(volume.name)} is the name of both volumes[${earlier}] and volumes[${index}]; give each volume a unique name`
      )
    }
    firstIndex.set(volume.name, index)
  })
}

function checkMountPathsApart(reader: FieldReader, volumes: readonly VolumeConfig[]): void {
  for (let later = 1; later < volumes.length; later++) {
    for (let earlier = 0; earlier < later; earlier++) {
      const a = volumes[earlier]
      const b = volumes[later]
      if (!pathsOverlap(a.mountPath, b.mountPath)) continue

      // Overlapping paths that differ in length are nested, and the shorter one contains the other.
      let relation = 'is the same as'
      if (a.mountPath.length < b.mountPath.length) relation = 'is inside'
      if (a.mountPath.length > b.mountPath.length) relation = 'contains'
      reader.fail(
        `volumes[${later}].mount_path`,
        `${describeValue(b.mountPath)} of volume ${describeValue(b.name)} (volumes[${later}]) ${relation} ` +
          `${describeValue(a.mountPath)} of volume ${describeValue(a.name)} (volumes[${earlier}]); ` +
          'give each volume a mount path that neither contains nor is inside another'
      )
    }
  }
}

