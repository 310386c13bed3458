// Volume adverts. Each node publishes the volumes it shares as a signed record on a gossipsub
// topic. It also returns every record it stores to a peer that queries it directly, so that a
// newcomer catches up at once instead of waiting for the next refresh.
//
// Record wire format, version 1: signedWire(identity, body), the CBOR array [body, signature]
// where `signature` is the Ed25519 signature of exactly the `body` bytes. `body` is the CBOR map
// { v: 1, peer, key, name, seq, iat, ttl, volumes }. cbor-x has no canonical mode, so a receiver
// verifies the bytes that travelled. It decodes the body first only to learn the signer's key and
// uses no field before the signature verifies against that key.
//
// Query protocol: the requester opens a stream and closes its writable end. The responder writes
// one CBOR array of record wires, each still signed by its owner, and closes. The requester
// verifies each record as if it came over gossip, so a relay can withhold records but not forge
// or alter them.

import './polyfill.js'
import { verify } from 'node:crypto'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { Connection, IdentifyResult, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { decode, encode } from 'cbor-x'
import type { Logger } from 'pino'
import { EnvelopeRejected, senderKeyOf, signedWire, type SealIdentity } from './envelope.js'
import type { MeshNode } from './libp2p.js'
import { RepeatLimiter } from '../repeat-limiter.js'

export const ADVERT_TOPIC = 'aegis/volumes/1'
export const ADVERT_PROTOCOL = '/aegis/adverts/1.0.0'
export const ADVERT_VERSION = 1

/** Largest record wire accepted or published, in bytes. */
export const MAX_RECORD_BYTES = 64 * 1024
export const MAX_VOLUMES_PER_RECORD = 1024
/** Publishers whose records a node stores at once. */
export const MAX_PEERS = 4096
/** Largest query response sent or accepted, in bytes. */
export const MAX_QUERY_RESPONSE_BYTES = 4 * 1024 * 1024
/** Largest difference between a record's issue time and the receiver's clock. */
export const MAX_CLOCK_SKEW_MS = 30_000
/** Largest record lifetime accepted, the same upper bound as mesh.advert_ttl. */
export const MAX_RECORD_TTL_MS = 3_600_000

const QUERY_TIMEOUT_MS = 10_000
/** Streams of the query protocol open at once on one connection, in each direction. */
const QUERY_STREAMS_PER_CONNECTION = 4
/** Repeats of the same rejection reason within this interval are counted, not logged. */
const REJECTION_LOG_INTERVAL_MS = 10_000
const ED25519_KEY_BYTES = 32
const ED25519_SIGNATURE_BYTES = 64
const MAX_PEER_ID_LENGTH = 128
const MAX_NODE_NAME_LENGTH = 253
const MAX_VOLUME_TEXT_LENGTH = 255
const MAX_STORAGE_CLASS_LENGTH = 64
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/

/** A volume this node lets other nodes address. */
export interface SharedVolume {
  id: string
  name: string
  accessMode: 'read-only' | 'read-write'
  storageClass: string
  sizeLimitBytes: number | null
}

/** A shared volume in this node's view, of another node or of this one. */
export interface VolumeAdvert extends SharedVolume {
  /** Peer id of the node that shares the volume. */
  owner: string
  /** Node name from the owner's record. Any peer may claim any name. */
  ownerName: string
  /** Time the advert lapses unless refreshed, ms on this node's clock, or Infinity for own volumes. */
  expiresAt: number
}

export interface PeerView {
  peerId: string
  /** Node name from the peer's latest record, or null when no record is stored. */
  nodeName: string | null
  /** Remote addresses of the open connections, or of the last connection when none is open. */
  addresses: string[]
  /** Addresses the peer listens on, as its latest identify reported them; empty until then. */
  listenAddresses: string[]
  connected: boolean
  /** Unexpired volumes in the peer's latest record. */
  volumes: number
  /** Time the latest record arrived, ms on this node's clock. */
  lastSeen: number | null
}

export interface AdvertOptions {
  node: MeshNode
  identity: SealIdentity
  nodeName: string
  logger: Logger
  /** Interval between publications of this node's record, 10 000 ms by default. */
  refreshMs?: number
  /** Lifetime this node gives its records, 30 000 ms by default. */
  ttlMs?: number
  /** Clock in ms since the Unix epoch, Date.now by default. */
  now?: () => number
  /**
   * Returns false for a publisher whose records must be ignored, such as a peer outside the
   * trust list whose record a trusted peer relays. Every publisher is accepted by default.
   */
  trustsPeer?: (peerId: string) => boolean
}

/** The decoded body of a verified record. */
export interface AdvertRecord {
  v: typeof ADVERT_VERSION
  peer: string
  /** Raw Ed25519 public key, from which `peer` is derived. */
  key: Uint8Array
  /** The publisher's node name. */
  name: string
  /** Sequence number, strictly increasing per publisher. A receiver keeps the highest. */
  seq: number
  /** Issue time, ms since the Unix epoch on the publisher's clock. */
  iat: number
  /** Lifetime in ms. */
  ttl: number
  volumes: SharedVolume[]
}

export type AdvertRejectionCode =
  | 'MALFORMED'
  | 'OVERSIZED'
  | 'BAD_VERSION'
  | 'KEY_MISMATCH'
  | 'BAD_SIGNATURE'
  | 'EXPIRED'
  | 'FROM_FUTURE'
  | 'STALE'
  | 'UNTRUSTED'
  | 'TOO_MANY_PEERS'

/** Thrown when a received record or query response is rejected. `code` names the reason. */
export class AdvertRejected extends Error {
  override name = 'AdvertRejected'
  constructor(
    readonly code: AdvertRejectionCode,
    message: string
  ) {
    super(message)
  }
}

/** Thrown by setVolumes when the list cannot be advertised. The message names the volume or limit. */
export class InvalidSharedVolumes extends Error {
  override name = 'InvalidSharedVolumes'
}

function isBytes(value: unknown, length?: number): value is Uint8Array {
  return value instanceof Uint8Array && (length === undefined || value.length === length)
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const prototype = Object.getPrototypeOf(value) as unknown
  return prototype === Object.prototype || prototype === null
}

function readText(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength || CONTROL_CHARACTERS.test(value)) {
    throw new AdvertRejected('MALFORMED', `${field} must be a string of 1 to ${maxLength} characters without control characters`)
  }
  return value
}

function readInteger(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new AdvertRejected('MALFORMED', `${field} must be an integer from ${min} to ${max}`)
  }
  return value
}

/** Checks one volume entry and returns a copy with only the known fields. */
function readVolume(value: unknown, field: string): SharedVolume {
  if (!isPlainMap(value)) throw new AdvertRejected('MALFORMED', `${field} is not a map`)
  if (value.accessMode !== 'read-only' && value.accessMode !== 'read-write') {
    throw new AdvertRejected('MALFORMED', `${field}.accessMode must be read-only or read-write`)
  }
  return {
    id: readText(value.id, `${field}.id`, MAX_VOLUME_TEXT_LENGTH),
    name: readText(value.name, `${field}.name`, MAX_VOLUME_TEXT_LENGTH),
    accessMode: value.accessMode,
    storageClass: readText(value.storageClass, `${field}.storageClass`, MAX_STORAGE_CLASS_LENGTH),
    sizeLimitBytes: value.sizeLimitBytes === null ? null : readInteger(value.sizeLimitBytes, `${field}.sizeLimitBytes`, 0)
  }
}

/** Checks a volume list: its length, each entry, and that no id appears twice. */
function readVolumes(value: unknown): SharedVolume[] {
  if (!Array.isArray(value)) throw new AdvertRejected('MALFORMED', 'volumes is not an array')
  if (value.length > MAX_VOLUMES_PER_RECORD) {
    throw new AdvertRejected('OVERSIZED', `record lists ${value.length} volumes, more than the limit of ${MAX_VOLUMES_PER_RECORD}`)
  }

  const volumes = value.map((entry, index) => readVolume(entry, `volumes[${index}]`))
  const ids = new Set<string>()
  for (const volume of volumes) {
    if (ids.has(volume.id)) throw new AdvertRejected('MALFORMED', `volume id ${JSON.stringify(volume.id)} appears twice`)
    ids.add(volume.id)
  }
  return volumes
}

function readRecordBody(value: unknown): AdvertRecord {
  if (!isPlainMap(value)) throw new AdvertRejected('MALFORMED', 'record body is not a map')
  if (value.v !== ADVERT_VERSION) {
    throw new AdvertRejected('BAD_VERSION', `record version ${String(value.v)} is not supported; this node speaks version ${ADVERT_VERSION}`)
  }
  if (!isBytes(value.key, ED25519_KEY_BYTES)) throw new AdvertRejected('MALFORMED', `key must be ${ED25519_KEY_BYTES} bytes`)

  return {
    v: ADVERT_VERSION,
    peer: readText(value.peer, 'peer', MAX_PEER_ID_LENGTH),
    key: value.key,
    name: readText(value.name, 'name', MAX_NODE_NAME_LENGTH),
    seq: readInteger(value.seq, 'seq', 1),
    iat: readInteger(value.iat, 'iat', 0),
    ttl: readInteger(value.ttl, 'ttl', 1, MAX_RECORD_TTL_MS),
    volumes: readVolumes(value.volumes)
  }
}

/**
 * Checks a received record wire without regard to records seen before: size, structure and
 * field types, key against peer id, signature, then issue time and lifetime against `nowMs`.
 * Returns the record, or throws AdvertRejected naming the first check that failed.
 */
export function verifyAdvert(wire: Uint8Array, nowMs: number, maxSkewMs = MAX_CLOCK_SKEW_MS): AdvertRecord {
  if (wire.byteLength > MAX_RECORD_BYTES) {
    throw new AdvertRejected('OVERSIZED', `record is ${wire.byteLength} bytes, more than the limit of ${MAX_RECORD_BYTES}`)
  }

  let outer: unknown
  try {
    outer = decode(wire)
  } catch (error) {
    throw new AdvertRejected('MALFORMED', `record is not valid CBOR: ${(error as Error).message}`)
  }
  if (!Array.isArray(outer) || outer.length !== 2 || !isBytes(outer[0]) || !isBytes(outer[1], ED25519_SIGNATURE_BYTES)) {
    throw new AdvertRejected('MALFORMED', 'record must be a CBOR array of body bytes and a 64-byte signature')
  }
  const body = outer[0]
  const signature = outer[1]

  let decoded: unknown
  try {
    decoded = decode(body)
  } catch (error) {
    throw new AdvertRejected('MALFORMED', `record body is not valid CBOR: ${(error as Error).message}`)
  }
  const record = readRecordBody(decoded)

  let signer: ReturnType<typeof senderKeyOf>
  try {
    signer = senderKeyOf(record.key)
  } catch (error) {
    if (error instanceof EnvelopeRejected) throw new AdvertRejected('MALFORMED', error.message)
    throw error
  }
  if (signer.peerId !== record.peer) {
    throw new AdvertRejected('KEY_MISMATCH', `record key belongs to ${signer.peerId}, not to the claimed publisher ${record.peer}`)
  }
  if (!verify(null, body, signer.keyObject, signature)) {
    throw new AdvertRejected('BAD_SIGNATURE', `signature of the record from ${record.peer} does not verify`)
  }

  if (record.iat > nowMs + maxSkewMs) {
    throw new AdvertRejected('FROM_FUTURE', `record from ${record.peer} was issued ${record.iat - nowMs} ms in the future, more than the allowed ${maxSkewMs} ms`)
  }
  if (record.iat + record.ttl <= nowMs) {
    throw new AdvertRejected('EXPIRED', `record from ${record.peer} expired ${nowMs - record.iat - record.ttl} ms ago`)
  }
  return record
}

/**
 * Reads a stream until the remote closes its writable end and returns the bytes. Aborts the
 * stream and rejects with AdvertRejected OVERSIZED past `maxBytes`.
 *
 * The stream is not iterated, because that waits for events that may have passed. A responder
 * that writes and closes at once can deliver its data and its close together with the protocol
 * confirmation. Then libp2p 3.3 (@libp2p/utils 7.4) has emitted 'end' before dialProtocol
 * returns, and puts the data back into the read buffer for the first 'message' listener. So the
 * read is complete when `readableEnded` is true and the read buffer is empty, checked after each
 * event.
 */
function readToEnd(stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = []
    let totalBytes = 0
    let settled = false

    const settle = (error: Error | null): void => {
      if (settled) return
      settled = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (error === null) resolve(Buffer.concat(chunks))
      else reject(error)
    }
    const settleIfDrained = (): void => {
      if (stream.readableEnded && stream.readBufferLength === 0) settle(null)
    }
    const onMessage = (event: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      const chunk = event.data.subarray()
      totalBytes += chunk.byteLength
      if (totalBytes > maxBytes) {
        // Settle before aborting, because abort() emits 'end' at once, which would resolve the
        // read with the bytes received so far.
        const error = new AdvertRejected('OVERSIZED', `query response exceeds the limit of ${maxBytes} bytes`)
        settle(error)
        stream.abort(error)
        return
      }
      chunks.push(chunk)
      settleIfDrained()
    }
    const onEnd = settleIfDrained
    const onClose = (event: { error?: Error }): void => {
      if (event.error !== undefined) settle(event.error)
      else settleIfDrained()
    }
    const onAbort = (): void => {
      const error = signal.reason instanceof Error ? signal.reason : new Error('query timed out')
      settle(error)
      stream.abort(error)
    }

    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort)
    if (signal.aborted) onAbort()
    else settleIfDrained()
  })
}

/** One stored record of another publisher. */
interface StoredRecord {
  record: AdvertRecord
  /** The bytes as received, relayed unchanged in query responses. */
  wire: Uint8Array
  receivedAt: number
  /** min(iat + ttl, receivedAt + ttl): the record stops being shown at this time. */
  expiresAt: number
  /**
   * iat + ttl: the record is kept, hidden, until this time, so that a replay of an older record
   * of the same publisher still meets a higher seq and is rejected as STALE. After it, such a
   * replay is rejected as EXPIRED.
   */
  forgetAt: number
  expiryReported: boolean
}

/** Origin of a received record, for logs. */
interface RecordSource {
  via: 'gossip' | 'query'
  /** Peer id of the peer that delivered the record, which may be a relay. */
  from: string
}

type AcceptOutcome = 'accepted' | 'duplicate' | 'own' | AdvertRejectionCode

/** Outcomes after which gossipsub drops the message and counts it against the sender. */
const REJECT_ON_GOSSIP = new Set<AcceptOutcome>(['MALFORMED', 'OVERSIZED', 'KEY_MISMATCH', 'BAD_SIGNATURE', 'FROM_FUTURE'])


/**
 * Returns a Buffer view of the same bytes. cbor-x writes a Buffer as a plain CBOR byte string
 * but tags any other Uint8Array (tag 64), which decoders other than cbor-x may not expect.
 */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function compareText(a: string, b: string): number {
  if (a < b) return -1
  if (a > b) return 1
  return 0
}

/**
 * Publishes this node's shared volumes and keeps the unexpired records of other publishers.
 * The local list comes only from setVolumes, never from a received record.
 */
export class AdvertService {
  private readonly node: MeshNode
  private readonly identity: SealIdentity
  private readonly nodeName: string
  private readonly logger: Logger
  private readonly refreshMs: number
  private readonly ttlMs: number
  private readonly now: () => number
  private readonly trustsPeer: (peerId: string) => boolean

  private ownVolumes: SharedVolume[] = []
  /** This node's latest record, returned first in query responses. */
  private ownWire: Uint8Array | null = null
  private lastSeq = 0
  /** Other publishers' latest records, by peer id. */
  private readonly records = new Map<string, StoredRecord>()
  /** Remote addresses of each peer's last connection, oldest first, at most MAX_PEERS. */
  private readonly lastAddresses = new Map<string, string[]>()
  /** Listen addresses from each peer's latest identify, oldest first, at most MAX_PEERS. */
  private readonly listenAddresses = new Map<string, string[]>()
  private readonly queriesInFlight = new Set<string>()
  private readonly changeListeners = new Set<() => void>()
  private readonly rejectionLog = new RepeatLimiter(REJECTION_LOG_INTERVAL_MS)
  private running = false
  private refreshTimer: NodeJS.Timeout | null = null
  private sweepTimer: NodeJS.Timeout | null = null
  private sweepAt = Number.POSITIVE_INFINITY

  constructor(options: AdvertOptions) {
    this.node = options.node
    this.identity = options.identity
    this.nodeName = options.nodeName
    this.logger = options.logger
    this.refreshMs = options.refreshMs ?? 10_000
    this.ttlMs = options.ttlMs ?? 30_000
    this.now = options.now ?? Date.now
    this.trustsPeer = options.trustsPeer ?? (() => true)

    if (this.nodeName.length === 0 || this.nodeName.length > MAX_NODE_NAME_LENGTH || CONTROL_CHARACTERS.test(this.nodeName)) {
      throw new RangeError(`node name ${JSON.stringify(this.nodeName)} cannot be advertised; use 1 to ${MAX_NODE_NAME_LENGTH} characters without control characters`)
    }
    if (this.ttlMs < 1 || this.ttlMs > MAX_RECORD_TTL_MS) throw new RangeError(`ttlMs ${this.ttlMs} is out of range; use 1 to ${MAX_RECORD_TTL_MS} ms`)
    if (this.refreshMs < 1 || this.refreshMs >= this.ttlMs) throw new RangeError(`refreshMs ${this.refreshMs} must be positive and shorter than ttlMs ${this.ttlMs}`)
  }

  /**
   * Subscribes to the topic, registers the query protocol, publishes this node's record, and
   * queries the peers connected already. Peers that connect later are queried once identify
   * shows that they speak the query protocol.
   */
  async start(): Promise<void> {
    if (this.running) return
    await this.node.handle(ADVERT_PROTOCOL, this.answerQuery, {
      maxInboundStreams: QUERY_STREAMS_PER_CONNECTION,
      maxOutboundStreams: QUERY_STREAMS_PER_CONNECTION
    })
    this.running = true

    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.set(ADVERT_TOPIC, this.validateGossip)
    pubsub.subscribe(ADVERT_TOPIC)
    this.node.addEventListener('peer:identify', this.onIdentify)
    this.node.addEventListener('peer:connect', this.onConnect)
    this.node.addEventListener('peer:disconnect', this.onDisconnect)

    await this.publishOwn(this.ownVolumes)
    this.refreshTimer = setInterval(() => void this.publishOwn(this.ownVolumes), this.refreshMs)
    this.refreshTimer.unref()

    for (const peerId of this.node.getPeers()) void this.queryIfSupported(peerId)
    this.logger.info({ topic: ADVERT_TOPIC, refreshMs: this.refreshMs, ttlMs: this.ttlMs, volumes: this.ownVolumes.length }, 'volume adverts started')
  }

  /**
   * Publishes a record with no volumes, so that receivers drop this node's volumes at once
   * instead of after the ttl, then unsubscribes and unregisters the query protocol.
   */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false

    if (this.refreshTimer !== null) clearInterval(this.refreshTimer)
    if (this.sweepTimer !== null) clearTimeout(this.sweepTimer)
    this.refreshTimer = null
    this.sweepTimer = null
    this.sweepAt = Number.POSITIVE_INFINITY
    this.node.removeEventListener('peer:identify', this.onIdentify)
    this.node.removeEventListener('peer:connect', this.onConnect)
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)

    await this.publishOwn([])
    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.delete(ADVERT_TOPIC)
    try {
      pubsub.unsubscribe(ADVERT_TOPIC)
    } catch (error) {
      // Gossipsub throws when the libp2p node stopped first, and then no subscription is left.
      this.logger.warn({ err: error }, 'leaving the advert topic failed')
    }
    try {
      await this.node.unhandle(ADVERT_PROTOCOL)
    } catch (error) {
      this.logger.warn({ err: error }, 'unregistering the advert query protocol failed')
    }
    this.logger.info('volume adverts stopped')
  }

  /**
   * Replaces the list of shared volumes and, while started, publishes it at once. Receivers
   * drop a volume that the new list no longer contains. Throws InvalidSharedVolumes when a
   * volume has an invalid field or the record would exceed MAX_RECORD_BYTES.
   */
  setVolumes(volumes: SharedVolume[]): void {
    let checked: SharedVolume[]
    try {
      checked = readVolumes(volumes)
    } catch (error) {
      if (error instanceof AdvertRejected) throw new InvalidSharedVolumes(`cannot advertise these volumes: ${error.message}`)
      throw error
    }
    const sizeBytes = this.signRecord(checked).byteLength
    if (sizeBytes > MAX_RECORD_BYTES) {
      throw new InvalidSharedVolumes(`the record of ${checked.length} volumes would be ${sizeBytes} bytes, more than the limit of ${MAX_RECORD_BYTES}; share fewer volumes or use shorter names`)
    }

    this.ownVolumes = checked
    this.emitChange()
    if (this.running) void this.publishOwn(checked)
  }

  /** Returns this node's volumes and the unexpired volumes of other publishers, by owner then id. */
  volumes(): VolumeAdvert[] {
    const now = this.now()
    const adverts: VolumeAdvert[] = this.ownVolumes.map((volume) => ({
      ...volume,
      owner: this.identity.peerId,
      ownerName: this.nodeName,
      expiresAt: Number.POSITIVE_INFINITY
    }))
    for (const stored of this.records.values()) {
      if (now >= stored.expiresAt) continue
      for (const volume of stored.record.volumes) {
        adverts.push({ ...volume, owner: stored.record.peer, ownerName: stored.record.name, expiresAt: stored.expiresAt })
      }
    }
    return adverts.sort((a, b) => compareText(a.owner, b.owner) || compareText(a.id, b.id))
  }

  /**
   * Finds a volume by owner and volume. `node` is the owner's peer id or node name, `volumeId`
   * the volume id or else its name. Any peer may claim any node name, so this node's own name
   * matches only this node, and another name matches only when the volumes of exactly one
   * publisher carry it. An ambiguous name or volume name finds nothing.
   */
  find(node: string, volumeId: string): VolumeAdvert | undefined {
    const adverts = this.volumes()
    let owned = adverts.filter((advert) => advert.owner === node)
    if (owned.length === 0 && node === this.nodeName) {
      owned = adverts.filter((advert) => advert.owner === this.identity.peerId)
    } else if (owned.length === 0) {
      owned = adverts.filter((advert) => advert.ownerName === node)
      if (new Set(owned.map((advert) => advert.owner)).size > 1) return undefined
    }

    const byId = owned.find((advert) => advert.id === volumeId)
    if (byId !== undefined) return byId
    const byName = owned.filter((advert) => advert.name === volumeId)
    return byName.length === 1 ? byName[0] : undefined
  }

  /** Returns the connected peers and the publishers of stored records, by peer id. */
  peers(): PeerView[] {
    const now = this.now()
    const views = new Map<string, PeerView>()
    for (const peerId of this.node.getPeers()) {
      const id = peerId.toString()
      const addresses = this.node.getConnections(peerId).map((connection) => connection.remoteAddr.toString())
      views.set(id, { peerId: id, nodeName: null, addresses, listenAddresses: this.listenAddresses.get(id) ?? [], connected: true, volumes: 0, lastSeen: null })
    }

    for (const [id, stored] of this.records) {
      let view = views.get(id)
      if (view === undefined) {
        view = { peerId: id, nodeName: null, addresses: this.lastAddresses.get(id) ?? [], listenAddresses: this.listenAddresses.get(id) ?? [], connected: false, volumes: 0, lastSeen: null }
        views.set(id, view)
      }
      view.nodeName = stored.record.name
      view.volumes = now < stored.expiresAt ? stored.record.volumes.length : 0
      view.lastSeen = stored.receivedAt
    }
    views.delete(this.identity.peerId)
    return [...views.values()].sort((a, b) => compareText(a.peerId, b.peerId))
  }

  /**
   * Calls `listener` whenever volumes() or peers() may have changed: a record arrived or
   * expired, setVolumes ran, or a peer connected or disconnected. Returns a function that
   * removes the listener.
   */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  private emitChange(): void {
    for (const listener of this.changeListeners) {
      try {
        listener()
      } catch (error) {
        this.logger.warn({ err: error }, 'volume advert change listener failed')
      }
    }
  }

  private signRecord(volumes: SharedVolume[], seq = 1, iat = 0): Uint8Array {
    const body: AdvertRecord = {
      v: ADVERT_VERSION,
      peer: this.identity.peerId,
      key: asBuffer(this.identity.publicKey),
      name: this.nodeName,
      seq,
      iat,
      ttl: this.ttlMs,
      volumes
    }
    return signedWire(this.identity, encode(body))
  }

  /** Signs a record of `volumes` with the next seq and publishes it. Failures are logged. */
  private async publishOwn(volumes: SharedVolume[]): Promise<void> {
    const now = Math.floor(this.now())
    this.lastSeq = Math.max(now, this.lastSeq + 1)
    const wire = this.signRecord(volumes, this.lastSeq, now)
    this.ownWire = wire

    try {
      await this.node.services.pubsub.publish(ADVERT_TOPIC, wire)
    } catch (error) {
      this.logger.warn({ err: error, seq: this.lastSeq }, 'publishing the volume advert failed; the next refresh retries')
    }
  }

  /** Gossipsub topic validator: stores a valid record and returns whether gossipsub forwards it. */
  private readonly validateGossip = (propagationSource: PeerId, message: Message): TopicValidatorResult => {
    try {
      const outcome = this.acceptRecord(message.data, { via: 'gossip', from: propagationSource.toString() })
      if (outcome === 'accepted') return TopicValidatorResult.Accept
      return REJECT_ON_GOSSIP.has(outcome) ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    } catch (error) {
      this.logger.error({ err: error, peer: propagationSource.toString() }, 'processing a volume advert failed')
      return TopicValidatorResult.Ignore
    }
  }

  /** Verifies a record and stores it unless a record with a higher or equal seq is stored. */
  private acceptRecord(received: Uint8Array, source: RecordSource): AcceptOutcome {
    const now = this.now()
    // cbor-x decodes byte strings as views of its input. Decoding a copy keeps a stored record
    // from holding on to the larger buffer that a gossip RPC or query response arrived in.
    const wire = received.byteLength <= MAX_RECORD_BYTES ? new Uint8Array(received) : received
    let record: AdvertRecord
    try {
      record = verifyAdvert(wire, now)
    } catch (error) {
      if (!(error instanceof AdvertRejected)) throw error
      return this.reject(error, source)
    }

    // This node's own record comes back from relays. The local list is never taken from it.
    if (record.peer === this.identity.peerId) return 'own'
    if (!this.trustsPeer(record.peer)) {
      return this.reject(new AdvertRejected('UNTRUSTED', `publisher ${record.peer} is not a trusted peer`), source)
    }

    const previous = this.records.get(record.peer)
    if (previous !== undefined) {
      if (record.seq === previous.record.seq && Buffer.compare(wire, previous.wire) === 0) return 'duplicate'
      if (record.seq <= previous.record.seq) {
        return this.reject(new AdvertRejected('STALE', `record from ${record.peer} has seq ${record.seq}, not above the stored ${previous.record.seq}`), source)
      }
    } else if (!this.makeRoom(record.peer, now)) {
      return this.reject(new AdvertRejected('TOO_MANY_PEERS', `records of ${MAX_PEERS} publishers are stored already`), source)
    }

    const stored: StoredRecord = {
      record,
      wire,
      receivedAt: now,
      expiresAt: Math.min(record.iat + record.ttl, now + record.ttl),
      forgetAt: record.iat + record.ttl,
      expiryReported: false
    }
    const changed = previous === undefined || now >= previous.expiresAt || record.name !== previous.record.name || !sameVolumes(record.volumes, previous.record.volumes)
    this.records.set(record.peer, stored)
    this.scheduleSweep(stored.expiresAt)
    this.logger.debug({ peer: record.peer, via: source.via, from: source.from, seq: record.seq, volumes: record.volumes.length }, 'volume advert accepted')

    if (changed) this.emitChange()
    return 'accepted'
  }

  private reject(error: AdvertRejected, source: RecordSource): AdvertRejectionCode {
    // An older record arriving late, through a relay or after its publisher restarted, is normal gossip.
    if (error.code === 'STALE') {
      this.logger.debug({ peer: source.from, via: source.via, reason: error.message }, 'older volume advert ignored')
      return error.code
    }
    const suppressed = this.rejectionLog.admit(error.code, this.now())
    if (suppressed !== null) {
      this.logger.warn({ peer: source.from, via: source.via, code: error.code, reason: error.message, suppressed }, 'volume advert rejected')
    }
    return error.code
  }

  /**
   * Makes room for a new publisher when MAX_PEERS are stored: drops expired records first.
   * Failing that, a publisher connected to this node displaces the record of an unconnected
   * one that expires soonest, so relayed records cannot crowd out direct peers.
   */
  private makeRoom(peer: string, now: number): boolean {
    if (this.records.size < MAX_PEERS) return true
    for (const [id, stored] of this.records) {
      if (now >= stored.expiresAt) this.records.delete(id)
    }
    if (this.records.size < MAX_PEERS) return true
    if (!this.isConnected(peer)) return false

    let victim: string | null = null
    let victimExpiresAt = Number.POSITIVE_INFINITY
    for (const [id, stored] of this.records) {
      if (stored.expiresAt < victimExpiresAt && !this.isConnected(id)) {
        victim = id
        victimExpiresAt = stored.expiresAt
      }
    }
    if (victim === null) return false
    this.records.delete(victim)
    return true
  }

  private isConnected(peer: string): boolean {
    try {
      return this.node.getConnections(peerIdFromString(peer)).length > 0
    } catch {
      return false
    }
  }

  /** Arms the sweep timer for `deadline` unless it is armed for an earlier time already. */
  private scheduleSweep(deadline: number): void {
    if (!this.running || deadline >= this.sweepAt) return
    if (this.sweepTimer !== null) clearTimeout(this.sweepTimer)
    this.sweepAt = deadline
    const delayMs = Math.min(Math.max(deadline - this.now(), 0) + 1, 2 ** 31 - 1)
    this.sweepTimer = setTimeout(() => this.sweep(), delayMs)
    this.sweepTimer.unref()
  }

  /** Reports records that expired, drops those past iat + ttl, and arms the next sweep. */
  private sweep(): void {
    this.sweepTimer = null
    this.sweepAt = Number.POSITIVE_INFINITY
    const now = this.now()
    let changed = false
    let next = Number.POSITIVE_INFINITY

    for (const [id, stored] of this.records) {
      if (now >= stored.forgetAt) {
        this.records.delete(id)
        changed ||= !stored.expiryReported
        continue
      }
      if (now >= stored.expiresAt && !stored.expiryReported) {
        stored.expiryReported = true
        changed = true
        this.logger.info({ peer: id, volumes: stored.record.volumes.length }, 'volume advert expired')
      }
      next = Math.min(next, now < stored.expiresAt ? stored.expiresAt : stored.forgetAt)
    }

    if (next !== Number.POSITIVE_INFINITY) this.scheduleSweep(next)
    if (changed) this.emitChange()
  }

  private readonly onConnect = (event: CustomEvent<PeerId>): void => {
    const id = event.detail.toString()
    const addresses = this.node.getConnections(event.detail).map((connection) => connection.remoteAddr.toString())
    remember(this.lastAddresses, id, addresses)
    this.emitChange()
  }

  private readonly onDisconnect = (): void => {
    this.emitChange()
  }

  // NOTE: a peer is queried when identify lists the query protocol. A peer that registers the
  // protocol after its identify ran (AdvertService started after connecting, without the
  // identify-push service) is not queried, and its records arrive with its next refresh.
  private readonly onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    remember(this.listenAddresses, event.detail.peerId.toString(), event.detail.listenAddrs.map((address) => address.toString()))
    this.emitChange()
    if (event.detail.protocols.includes(ADVERT_PROTOCOL)) void this.query(event.detail.peerId)
  }

  /** Queries a peer connected before start() if the peer store lists the query protocol for it. */
  private async queryIfSupported(peerId: PeerId): Promise<void> {
    try {
      const peer = await this.node.peerStore.get(peerId)
      if (peer.protocols.includes(ADVERT_PROTOCOL)) await this.query(peerId)
    } catch (error) {
      this.logger.debug({ peer: peerId.toString(), err: error }, 'peer store has no entry for a connected peer; waiting for identify')
    }
  }

  /** Requests every record a peer stores and accepts the valid ones. Failures are logged. */
  private async query(peerId: PeerId): Promise<void> {
    const peer = peerId.toString()
    if (!this.running || this.queriesInFlight.has(peer)) return
    this.queriesInFlight.add(peer)

    const signal = AbortSignal.timeout(QUERY_TIMEOUT_MS)
    let stream: Stream | null = null
    try {
      stream = await this.node.dialProtocol(peerId, ADVERT_PROTOCOL, { signal })
      const [, response] = await Promise.all([stream.close({ signal }), readToEnd(stream, MAX_QUERY_RESPONSE_BYTES, signal)])
      if (this.running) this.acceptQueryResponse(response, peer)
    } catch (error) {
      stream?.abort(error as Error)
      if (error instanceof AdvertRejected) this.reject(error, { via: 'query', from: peer })
      else this.logger.warn({ peer, err: error }, 'advert query failed; the peer\'s records arrive with its next refresh')
    } finally {
      this.queriesInFlight.delete(peer)
    }
  }

  private acceptQueryResponse(response: Uint8Array, peer: string): void {
    const source: RecordSource = { via: 'query', from: peer }
    let wires: unknown
    try {
      wires = decode(response)
    } catch (error) {
      this.reject(new AdvertRejected('MALFORMED', `query response is not valid CBOR: ${(error as Error).message}`), source)
      return
    }
    if (!Array.isArray(wires) || wires.length > MAX_PEERS + 1) {
      this.reject(new AdvertRejected('MALFORMED', `query response must be a CBOR array of at most ${MAX_PEERS + 1} records`), source)
      return
    }

    let accepted = 0
    for (const wire of wires) {
      if (!isBytes(wire)) {
        this.reject(new AdvertRejected('MALFORMED', 'query response entry is not a byte string'), source)
        continue
      }
      if (this.acceptRecord(wire, source) === 'accepted') accepted++
    }
    this.logger.debug({ peer, records: wires.length, accepted }, 'advert query response processed')
  }

  /**
   * Stream handler of the query protocol: writes this node's record and every unexpired stored
   * record, newest first, up to MAX_QUERY_RESPONSE_BYTES, then closes.
   */
  private readonly answerQuery = async (stream: Stream, connection: Connection): Promise<void> => {
    const peer = connection.remotePeer.toString()
    try {
      const signal = AbortSignal.timeout(QUERY_TIMEOUT_MS)
      if (!stream.send(this.encodeQueryResponse())) await stream.onDrain({ signal })
      await stream.close({ signal })
    } catch (error) {
      stream.abort(error as Error)
      this.logger.warn({ peer, err: error }, 'responding to an advert query failed')
    }
  }

  private encodeQueryResponse(): Uint8Array {
    const now = this.now()
    const wires: Buffer[] = this.ownWire === null ? [] : [asBuffer(this.ownWire)]
    // A CBOR byte string header takes at most 9 bytes, and the array header as much.
    let sizeBytes = 9 + wires.reduce((sum, wire) => sum + wire.byteLength + 9, 0)
    // NOTE: past MAX_QUERY_RESPONSE_BYTES the oldest records are left out, and the requester
    // learns them only from the publishers' next refresh.
    const stored = [...this.records.values()].filter((entry) => now < entry.expiresAt).sort((a, b) => b.receivedAt - a.receivedAt)
    for (const entry of stored) {
      if (sizeBytes + entry.wire.byteLength + 9 > MAX_QUERY_RESPONSE_BYTES) break
      sizeBytes += entry.wire.byteLength + 9
      wires.push(asBuffer(entry.wire))
    }
    return encode(wires)
  }
}

function sameVolumes(a: SharedVolume[], b: SharedVolume[]): boolean {
  if (a.length !== b.length) return false
  return a.every((volume, index) => {
    const other = b[index]
    return (
      volume.id === other.id &&
      volume.name === other.name &&
      volume.accessMode === other.accessMode &&
      volume.storageClass === other.storageClass &&
      volume.sizeLimitBytes === other.sizeLimitBytes
    )
  })
}

/** Stores a peer's addresses as the newest entry, dropping the oldest peer beyond MAX_PEERS. */
function remember(addresses: Map<string, string[]>, peerId: string, list: string[]): void {
  addresses.delete(peerId)
  if (addresses.size >= MAX_PEERS) addresses.delete(addresses.keys().next().value as string)
  addresses.set(peerId, list)
}
