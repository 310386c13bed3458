// The `mesh:` section: the node's libp2p peer, who may connect to it, which of its volumes the
// mesh may reach, and where the Cedar policies that decide remote requests live. A node without
// this section takes no part in the mesh and serves no seal volumes.

import { resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describeValue } from './errors.js'
import { childField, isUnset, type FieldReader } from './fields.js'

export const meshKeys = [
  'listen',
  'bootstrap',
  'trusted_peers',
  'peers',
  'share',
  'policy_dir',
  'max_clock_skew',
  'request_timeout',
  'advert_refresh',
  'advert_ttl'
] as const
export const meshPeerKeys = ['labels'] as const
export const meshShareKeys = ['volume', 'labels'] as const

export interface SharedVolumeConfig {
  /** Name of a volume of this node. */
  volume: string
  /** Labels the Cedar policies see on the volume resource. */
  labels: string[]
}

export interface MeshConfig {
  /** Multiaddrs the libp2p peer listens on. */
  listen: string[]
  /** Multiaddrs, each ending in /p2p/<peer id>, that the node keeps a connection to. */
  bootstrap: string[]
  /** Peer ids allowed to connect in either direction, or 'any'. */
  trustedPeers: string[] | 'any'
  /** Labels the Cedar policies see on each calling node, by peer id. */
  peerLabels: Record<string, string[]>
  /** Volumes that other nodes may address; the policies decide each request. */
  share: SharedVolumeConfig[]
  /** Directory of .cedar files, or null: then every remote request is denied. */
  policyDir: string | null
  maxClockSkewMs: number
  requestTimeoutMs: number
  advertRefreshMs: number
  advertTtlMs: number
}

export const meshDefaults = {
  listen: ['/ip4/127.0.0.1/tcp/4001'],
  maxClockSkewMs: 30_000,
  requestTimeoutMs: 30_000,
  advertRefreshMs: 10_000,
  advertTtlMs: 30_000
} as const

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000 }
const labelPattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/

/** Reads a duration written with a unit: 500ms, 30s, 2m. Returns milliseconds. */
export function readDuration(reader: FieldReader, value: unknown, field: string, range: { minMs: number; maxMs: number }): number {
  const text = typeof value === 'number' ? null : reader.string(value, field).trim()
  const match = text === null ? null : /^([0-9]+)(ms|s|m)$/.exec(text)
  if (match === null) {
    reader.fail(field, `${describeValue(value)} is not a duration; write a whole number with a unit, such as 500ms, 30s or 2m`)
  }
  const ms = Number(match[1]) * durationUnits[match[2]]
  if (ms < range.minMs || ms > range.maxMs) {
    reader.fail(field, `${describeValue(value)} is out of range; use a duration from ${range.minMs}ms to ${range.maxMs / 1000}s`)
  }
  return ms
}

/** Reads a libp2p peer id; only Ed25519 ids are accepted, because envelopes are signed with Ed25519. */
export function readPeerId(reader: FieldReader, value: unknown, field: string): string {
  const text = reader.string(value, field)
  let peerId: ReturnType<typeof peerIdFromString>
  try {
    peerId = peerIdFromString(text)
  } catch {
    reader.fail(field, `${describeValue(text)} is not a libp2p peer id; run "aegis-node id" on that node and copy the id it prints (12D3KooW...)`)
  }
  if (peerId.type !== 'Ed25519') reader.fail(field, `${describeValue(text)} is a peer id of type ${peerId.type}; aegis-node peers have Ed25519 ids (12D3KooW...)`)
  // Other encodings of the same id (a CID) are stored in the form libp2p reports for connections.
  return peerId.toString()
}

/** Reads a TCP multiaddr such as /ip4/127.0.0.1/tcp/4001, with a /p2p/<peer id> suffix when `withPeer`. */
function readMultiaddr(reader: FieldReader, value: unknown, field: string, withPeer: boolean): string {
  const text = reader.string(value, field)
  const example = withPeer ? '/ip4/10.0.0.2/tcp/4001/p2p/12D3KooW...' : '/ip4/127.0.0.1/tcp/4001'
  let protocols: string[]
  let peer: string | null = null
  try {
    const components = multiaddr(text).getComponents()
    protocols = components.map((component) => component.name)
    peer = components.find((component) => component.name === 'p2p')?.value ?? null
  } catch (error) {
    reader.fail(field, `${describeValue(text)} is not a multiaddr (${(error as Error).message}); write it like ${example}`)
  }
  const ipFirst = ['ip4', 'ip6', 'dns4', 'dns6', 'dns'].includes(protocols[0]) && protocols[1] === 'tcp'
  const expected = withPeer ? ipFirst && protocols.length === 3 && peer !== null : ipFirst && protocols.length === 2
  if (!expected) reader.fail(field, `${describeValue(text)} must be an address and TCP port${withPeer ? ' followed by /p2p/<peer id>' : ''}, like ${example}`)
  if (peer !== null) {
    const normalized = readPeerId(reader, peer, field)
    return text.slice(0, text.lastIndexOf('/p2p/') + 5) + normalized
  }
  return text
}

function readLabels(reader: FieldReader, value: unknown, field: string): string[] {
  if (isUnset(value)) return []
  return reader.list(value, field).map((item, index) => {
    const label = reader.string(item, `${field}[${index}]`)
    if (!labelPattern.test(label)) reader.fail(`${field}[${index}]`, `${describeValue(label)} is not a label; use 1 to 63 letters, digits, ".", "_", ":" or "-"`)
    return label
  })
}

function readList<T>(reader: FieldReader, value: unknown, field: string, read: (item: unknown, itemField: string) => T): T[] {
  if (isUnset(value)) return []
  return reader.list(value, field).map((item, index) => read(item, `${field}[${index}]`))
}

/** Reads the `mesh:` section; `volumeNames` are the node's volumes, which `share` may name. */
export function readMesh(reader: FieldReader, value: unknown, baseDir: string, volumeNames: readonly string[]): MeshConfig | null {
  if (value === undefined) return null
  const map = reader.optionalMap(value, 'mesh')
  reader.checkKeys(map, 'mesh', meshKeys)

  const listen = isUnset(map.listen) ? [...meshDefaults.listen] : readList(reader, map.listen, 'mesh.listen', (item, field) => readMultiaddr(reader, item, field, false))
  if (listen.length === 0) reader.fail('mesh.listen', 'the list is empty; give at least one address such as /ip4/127.0.0.1/tcp/4001')
  const bootstrap = readList(reader, map.bootstrap, 'mesh.bootstrap', (item, field) => readMultiaddr(reader, item, field, true))

  let trustedPeers: string[] | 'any'
  if (map.trusted_peers === 'any') trustedPeers = 'any'
  else if (isUnset(map.trusted_peers)) trustedPeers = bootstrap.map((address) => address.slice(address.lastIndexOf('/p2p/') + 5))
  else if (typeof map.trusted_peers === 'string') reader.fail('mesh.trusted_peers', `${describeValue(map.trusted_peers)} is neither "any" nor a list; write "any" or a list of peer ids`)
  else trustedPeers = readList(reader, map.trusted_peers, 'mesh.trusted_peers', (item, field) => readPeerId(reader, item, field))

  const peerLabels: Record<string, string[]> = {}
  const peers = reader.optionalMap(map.peers, 'mesh.peers')
  for (const [peerId, entry] of Object.entries(peers)) {
    const field = childField('mesh.peers', peerId)
    const normalized = readPeerId(reader, peerId, field)
    const entryMap = reader.optionalMap(entry, field)
    reader.checkKeys(entryMap, field, meshPeerKeys)
    peerLabels[normalized] = readLabels(reader, entryMap.labels, childField(field, 'labels'))
  }

  const share = readList(reader, map.share, 'mesh.share', (item, field): SharedVolumeConfig => {
    const entry = typeof item === 'string' ? { volume: item } : reader.map(item, field)
    reader.checkKeys(entry, field, meshShareKeys)
    const volumeField = typeof item === 'string' ? field : childField(field, 'volume')
    const volume = reader.string(entry.volume, volumeField)
    if (!volumeNames.includes(volume)) reader.fail(volumeField, `${describeValue(volume)} is not a volume of this node; the volumes are ${volumeNames.join(', ')}`)
    return { volume, labels: readLabels(reader, entry.labels, childField(field, 'labels')) }
  })
  const sharedNames = share.map((entry) => entry.volume)
  const twice = sharedNames.find((name, index) => sharedNames.indexOf(name) !== index)
  if (twice !== undefined) reader.fail('mesh.share', `volume ${describeValue(twice)} is listed twice; list each volume once`)

  let policyDir: string | null = null
  if (!isUnset(map.policy_dir)) {
    const text = reader.string(map.policy_dir, 'mesh.policy_dir')
    if (text.startsWith('~')) reader.fail('mesh.policy_dir', `${describeValue(text)} starts with "~", which is not expanded; write the full path`)
    policyDir = resolve(baseDir, text)
  }
  const duration = (key: string, fallback: number, minMs: number, maxMs: number): number =>
    isUnset(map[key]) ? fallback : readDuration(reader, map[key], `mesh.${key}`, { minMs, maxMs })
  const advertTtlMs = duration('advert_ttl', meshDefaults.advertTtlMs, 1000, 3_600_000)
  const advertRefreshMs = duration('advert_refresh', Math.min(meshDefaults.advertRefreshMs, Math.floor(advertTtlMs / 3)), 100, 3_600_000)
  if (advertRefreshMs >= advertTtlMs) reader.fail('mesh.advert_refresh', `${advertRefreshMs}ms is not shorter than mesh.advert_ttl (${advertTtlMs}ms); records would expire between refreshes, so lower advert_refresh or raise advert_ttl`)

  return {
    listen,
    bootstrap,
    trustedPeers,
    peerLabels,
    share,
    policyDir,
    maxClockSkewMs: duration('max_clock_skew', meshDefaults.maxClockSkewMs, 1000, 600_000),
    requestTimeoutMs: duration('request_timeout', meshDefaults.requestTimeoutMs, 100, 600_000),
    advertRefreshMs,
    advertTtlMs
  }
}
