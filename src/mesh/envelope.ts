// SealEnvelope: a signed CBOR request from one node to the node that owns a volume.
//
// Wire format, version 1: a CBOR array [body, signature]. `body` is the CBOR encoding of the
// envelope map and `signature` the Ed25519 signature of exactly those bytes. cbor-x has no
// canonical mode, so the receiver verifies the bytes that travelled and decodes them only after.
// The map contains the sender's peer id and raw public key, the recipient's peer id, the issue
// time, a random nonce, the operation, the remote volume id, the path or handle, the arguments,
// and for writes the SHA-256 of the data.

import { createHash, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { decode, encode } from 'cbor-x'

export const ENVELOPE_VERSION = 1
export const NONCE_BYTES = 16
const ED25519_KEY_BYTES = 32
const ED25519_SIGNATURE_BYTES = 64
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export interface SealRequest {
  op: string
  volume: string
  path?: string
  handle?: Uint8Array
  args?: Record<string, unknown>
  /** Write data; only its hash travels in the signed envelope. */
  data?: Uint8Array
}

export interface SealEnvelope {
  v: number
  from: string
  to: string
  /** The sender's raw Ed25519 public key; `from` must be the peer id derived from it. */
  key: Uint8Array
  /** Issue time, milliseconds since the Unix epoch. */
  iat: number
  nonce: Uint8Array
  op: string
  volume: string
  path?: string
  handle?: Uint8Array
  args: Record<string, unknown>
  /** SHA-256 of the write data, when there is data. */
  dataHash?: Uint8Array
}

/** A node's signing identity: its peer id, raw public key and private key. */
export interface SealIdentity {
  peerId: string
  publicKey: Uint8Array
  privateKey: KeyObject
}

export type RejectionCode =
  | 'MALFORMED'
  | 'BAD_VERSION'
  | 'KEY_MISMATCH'
  | 'BAD_SIGNATURE'
  | 'WRONG_RECIPIENT'
  | 'STALE'
  | 'FROM_FUTURE'
  | 'REPLAYED'
  | 'REPLAY_CACHE_FULL'
  | 'UNKNOWN_OPERATION'
  | 'UNKNOWN_VOLUME'
  | 'DATA_MISMATCH'
  /** The envelope's sender is not the peer whose connection carried it. */
  | 'SENDER_MISMATCH'

/** Thrown when a received envelope is rejected; `code` names the reason, one code per reason. */
export class EnvelopeRejected extends Error {
  override name = 'EnvelopeRejected'
  /** The operation the rejected envelope names, when the body decoded and the operation is known. */
  operation: string | null = null
  /** The volume the rejected envelope names, when the body decoded and this node serves it. */
  volume: string | null = null
  constructor(
    readonly code: RejectionCode,
    message: string
  ) {
    super(message)
  }
}

/** Returns the libp2p peer id of a raw Ed25519 public key. */
export function peerIdOfKey(publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString()
}

export function sha256(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest()
}

/** Builds and signs an envelope for `to`; returns the bytes to send. */
export function sealEnvelope(identity: SealIdentity, to: string, request: SealRequest, nowMs = Date.now()): Uint8Array {
  const envelope: SealEnvelope = {
    v: ENVELOPE_VERSION,
    from: identity.peerId,
    to,
    key: identity.publicKey,
    iat: nowMs,
    nonce: randomBytes(NONCE_BYTES),
    op: request.op,
    volume: request.volume,
    args: request.args ?? {}
  }
  if (request.path !== undefined) envelope.path = request.path
  if (request.handle !== undefined) envelope.handle = request.handle
  if (request.data !== undefined) envelope.dataHash = sha256(request.data)

  return signedWire(identity, encode(envelope))
}

/** Peer ids and verification keys of the raw public keys seen recently, derived once per key. */
const senderKeys = new Map<string, { peerId: string; keyObject: KeyObject }>()
const SENDER_KEYS_MAX = 4096

/**
 * Returns the peer id and the node:crypto verification key of a raw Ed25519 public key;
 * EnvelopeRejected MALFORMED when the bytes are not such a key.
 */
export function senderKeyOf(raw: Uint8Array): { peerId: string; keyObject: KeyObject } {
  const cacheKey = Buffer.from(raw).toString('hex')
  let key = senderKeys.get(cacheKey)
  if (key === undefined) {
    let peerId: string
    try {
      peerId = peerIdOfKey(raw)
    } catch (error) {
      throw new EnvelopeRejected('MALFORMED', `sender key is not an Ed25519 public key: ${(error as Error).message}`)
    }
    const keyObject = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
    key = { peerId, keyObject }
    if (senderKeys.size >= SENDER_KEYS_MAX) senderKeys.clear()
    senderKeys.set(cacheKey, key)
  }
  return key
}

/** Signs `bytes` and returns the CBOR array [bytes, signature] that travels. */
export function signedWire(identity: SealIdentity, bytes: Uint8Array): Uint8Array {
  return encode([bytes, sign(null, bytes, identity.privateKey)])
}

export interface VerifierOptions {
  selfPeerId: string
  /** Largest difference between an envelope's issue time and this node's clock. */
  maxSkewMs?: number
  operations: ReadonlySet<string>
  /** Returns true for a volume id this node serves. */
  knowsVolume: (volumeId: string) => boolean
  /** Nonces remembered at once; beyond it, new envelopes are refused until old nonces expire. */
  replayCacheEntries?: number
}

function isBytes(value: unknown, length?: number): value is Uint8Array {
  return value instanceof Uint8Array && (length === undefined || value.length === length)
}

/**
 * Checks received envelopes in a fixed order: structure, version, sender key against peer id,
 * signature, recipient, freshness, replay, operation, volume, data hash. Only an envelope that
 * passes all of them reaches policy evaluation.
 */
export class EnvelopeVerifier {
  private readonly maxSkewMs: number
  private readonly replayCacheEntries: number
  /** Nonce (hex) -> time after which it can no longer be fresh, in insertion order. */
  private readonly seenNonces = new Map<string, number>()

  constructor(private readonly options: VerifierOptions) {
    this.maxSkewMs = options.maxSkewMs ?? 30_000
    this.replayCacheEntries = options.replayCacheEntries ?? 1_000_000
  }

  verify(wire: Uint8Array, data?: Uint8Array, nowMs = Date.now()): SealEnvelope {
    const { body, signature } = this.unwrap(wire)
    const envelope = this.decodeBody(body)
    try {
      this.check(envelope, body, signature, data, nowMs)
    } catch (error) {
      // The audit trail names what was asked even when the envelope is refused.
      if (error instanceof EnvelopeRejected) {
        if (this.options.operations.has(envelope.op)) error.operation = envelope.op
        if (this.options.knowsVolume(envelope.volume)) error.volume = envelope.volume
      }
      throw error
    }
    return envelope
  }

  private check(envelope: SealEnvelope, body: Uint8Array, signature: Uint8Array, data: Uint8Array | undefined, nowMs: number): void {
    const key = senderKeyOf(envelope.key)
    if (key.peerId !== envelope.from) {
      throw new EnvelopeRejected('KEY_MISMATCH', `sender key belongs to ${key.peerId}, not to the claimed sender ${envelope.from}`)
    }
    if (!verify(null, body, key.keyObject, signature)) throw new EnvelopeRejected('BAD_SIGNATURE', `signature of the envelope from ${envelope.from} does not verify`)
    if (envelope.to !== this.options.selfPeerId) throw new EnvelopeRejected('WRONG_RECIPIENT', `envelope is addressed to ${envelope.to}, not to this node`)

    if (envelope.iat < nowMs - this.maxSkewMs) throw new EnvelopeRejected('STALE', `envelope was issued ${nowMs - envelope.iat} ms ago, more than the allowed ${this.maxSkewMs} ms`)
    if (envelope.iat > nowMs + this.maxSkewMs) throw new EnvelopeRejected('FROM_FUTURE', `envelope was issued ${envelope.iat - nowMs} ms in the future, more than the allowed ${this.maxSkewMs} ms`)
    this.checkNonce(envelope.nonce, envelope.iat, nowMs)

    if (!this.options.operations.has(envelope.op)) throw new EnvelopeRejected('UNKNOWN_OPERATION', `operation ${JSON.stringify(envelope.op)} is not known`)
    if (!this.options.knowsVolume(envelope.volume)) throw new EnvelopeRejected('UNKNOWN_VOLUME', `volume ${JSON.stringify(envelope.volume)} is not served by this node`)
    if (data !== undefined || envelope.dataHash !== undefined) {
      if (data === undefined || envelope.dataHash === undefined || !Buffer.from(sha256(data)).equals(envelope.dataHash)) {
        throw new EnvelopeRejected('DATA_MISMATCH', 'the data does not match the hash in the envelope')
      }
    }
  }

  private unwrap(wire: Uint8Array): { body: Uint8Array; signature: Uint8Array } {
    let outer: unknown
    try {
      outer = decode(wire)
    } catch (error) {
      throw new EnvelopeRejected('MALFORMED', `envelope is not valid CBOR: ${(error as Error).message}`)
    }
    if (!Array.isArray(outer) || outer.length !== 2 || !isBytes(outer[0]) || !isBytes(outer[1], ED25519_SIGNATURE_BYTES)) {
      throw new EnvelopeRejected('MALFORMED', 'envelope must be a CBOR array of body bytes and a 64-byte signature')
    }
    return { body: outer[0], signature: outer[1] }
  }

  private decodeBody(body: Uint8Array): SealEnvelope {
    let value: unknown
    try {
      value = decode(body)
    } catch (error) {
      throw new EnvelopeRejected('MALFORMED', `envelope body is not valid CBOR: ${(error as Error).message}`)
    }
    const envelope = value as Partial<SealEnvelope> | null
    if (envelope === null || typeof envelope !== 'object') throw new EnvelopeRejected('MALFORMED', 'envelope body is not a map')
    if (envelope.v !== ENVELOPE_VERSION) throw new EnvelopeRejected('BAD_VERSION', `envelope version ${String(envelope.v)} is not supported; this node speaks version ${ENVELOPE_VERSION}`)

    const valid =
      typeof envelope.from === 'string' &&
      typeof envelope.to === 'string' &&
      isBytes(envelope.key, ED25519_KEY_BYTES) &&
      typeof envelope.iat === 'number' &&
      Number.isFinite(envelope.iat) &&
      isBytes(envelope.nonce) &&
      envelope.nonce.length >= NONCE_BYTES &&
      typeof envelope.op === 'string' &&
      typeof envelope.volume === 'string' &&
      typeof envelope.args === 'object' &&
      envelope.args !== null &&
      (envelope.path === undefined || typeof envelope.path === 'string') &&
      (envelope.handle === undefined || isBytes(envelope.handle)) &&
      (envelope.dataHash === undefined || isBytes(envelope.dataHash, 32))
    if (!valid) throw new EnvelopeRejected('MALFORMED', 'envelope body lacks a field or has one of the wrong type')
    return envelope as SealEnvelope
  }

  /** Remembers a nonce until its envelope could no longer pass the freshness check. */
  private checkNonce(nonce: Uint8Array, issuedAtMs: number, nowMs: number): void {
    for (const [seen, expiresAtMs] of this.seenNonces) {
      if (expiresAtMs >= nowMs) break
      this.seenNonces.delete(seen)
    }

    const key = Buffer.from(nonce).toString('hex')
    if (this.seenNonces.has(key)) throw new EnvelopeRejected('REPLAYED', 'nonce was already used within the freshness window')
    if (this.seenNonces.size >= this.replayCacheEntries) {
      throw new EnvelopeRejected('REPLAY_CACHE_FULL', `${this.replayCacheEntries} nonces are remembered already; retry when older ones expire`)
    }
    this.seenNonces.set(key, Math.max(issuedAtMs + this.maxSkewMs, nowMs))
  }
}
