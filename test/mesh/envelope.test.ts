import { generateKeyPairSync, sign, verify, createPublicKey, createPrivateKey } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { decode, encode } from 'cbor-x'
import { describe, expect, it } from 'vitest'
import { EnvelopeRejected, EnvelopeVerifier, peerIdOfKey, sealEnvelope, type SealIdentity } from '../../src/mesh/envelope.js'

function identity(): SealIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12)
  return { peerId: peerIdOfKey(raw), publicKey: raw, privateKey }
}

const sender = identity()
const receiver = identity()
const NOW = 1_800_000_000_000

function verifier(): EnvelopeVerifier {
  return new EnvelopeVerifier({
    selfPeerId: receiver.peerId,
    operations: new Set(['read_at', 'write_at', 'getattr']),
    knowsVolume: (volume) => volume === 'vol-1'
  })
}

function rejection(action: () => unknown): string {
  try {
    action()
  } catch (error) {
    if (error instanceof EnvelopeRejected) return error.code
    throw error
  }
  return 'accepted'
}

/** Re-signs a modified body with `signer`, as an attacker holding that key would. */
function resign(wire: Uint8Array, change: (envelope: Record<string, unknown>) => void, signer: SealIdentity = sender): Uint8Array {
  const [body] = decode(wire) as [Uint8Array, Uint8Array]
  const envelope = decode(body) as Record<string, unknown>
  change(envelope)
  const newBody = encode(envelope)
  return encode([newBody, sign(null, newBody, signer.privateKey)])
}

describe('seal envelope', () => {
  it('round-trips a request', () => {
    const data = Buffer.from('payload')
    const wire = sealEnvelope(sender, receiver.peerId, { op: 'write_at', volume: 'vol-1', path: '/a', args: { offset: 7 }, data }, NOW)
    const envelope = verifier().verify(wire, data, NOW)
    expect(envelope.from).toBe(sender.peerId)
    expect(envelope.path).toBe('/a')
    expect(envelope.args).toEqual({ offset: 7 })
    expect(envelope.nonce.length).toBeGreaterThanOrEqual(16)
  })

  it('rejects each bad envelope for its reason', () => {
    const other = identity()
    const fresh = () => sealEnvelope(sender, receiver.peerId, { op: 'read_at', volume: 'vol-1', path: '/a' }, NOW)
    const cases: Array<[string, () => unknown, string]> = [
      ['tampered payload', () => {
        const [body, signature] = decode(fresh()) as [Uint8Array, Uint8Array]
        const altered = Buffer.from(body)
        altered[altered.length - 2] ^= 1
        return verifier().verify(encode([altered, signature]), undefined, NOW)
      }, 'BAD_SIGNATURE'],
      ['signed with another key', () => verifier().verify(resign(fresh(), () => {}, other), undefined, NOW), 'BAD_SIGNATURE'],
      ['key of another peer', () => verifier().verify(resign(fresh(), (e) => { e.key = other.publicKey }, other), undefined, NOW), 'KEY_MISMATCH'],
      ['wrong recipient', () => verifier().verify(sealEnvelope(sender, other.peerId, { op: 'read_at', volume: 'vol-1' }, NOW), undefined, NOW), 'WRONG_RECIPIENT'],
      ['stale', () => verifier().verify(sealEnvelope(sender, receiver.peerId, { op: 'read_at', volume: 'vol-1' }, NOW - 31_000), undefined, NOW), 'STALE'],
      ['from the future', () => verifier().verify(sealEnvelope(sender, receiver.peerId, { op: 'read_at', volume: 'vol-1' }, NOW + 31_000), undefined, NOW), 'FROM_FUTURE'],
      ['truncated CBOR', () => verifier().verify(fresh().subarray(0, 40), undefined, NOW), 'MALFORMED'],
      ['unknown operation', () => verifier().verify(sealEnvelope(sender, receiver.peerId, { op: 'format_disk', volume: 'vol-1' }, NOW), undefined, NOW), 'UNKNOWN_OPERATION'],
      ['unknown volume', () => verifier().verify(sealEnvelope(sender, receiver.peerId, { op: 'read_at', volume: 'vol-2' }, NOW), undefined, NOW), 'UNKNOWN_VOLUME'],
      ['other version', () => verifier().verify(resign(fresh(), (e) => { e.v = 2 }), undefined, NOW), 'BAD_VERSION'],
      ['short nonce', () => verifier().verify(resign(fresh(), (e) => { e.nonce = Buffer.alloc(8) }), undefined, NOW), 'MALFORMED'],
      ['data not matching', () => verifier().verify(sealEnvelope(sender, receiver.peerId, { op: 'write_at', volume: 'vol-1', data: Buffer.from('a') }, NOW), Buffer.from('b'), NOW), 'DATA_MISMATCH']
    ]
    for (const [name, action, code] of cases) expect(rejection(action), name).toBe(code)
  })

  it('rejects a replayed nonce', () => {
    const check = verifier()
    const wire = sealEnvelope(sender, receiver.peerId, { op: 'getattr', volume: 'vol-1' }, NOW)
    expect(check.verify(wire, undefined, NOW).op).toBe('getattr')
    expect(rejection(() => check.verify(wire, undefined, NOW + 1000))).toBe('REPLAYED')
    // Past the window the envelope is refused as stale, so the nonce need not be kept.
    expect(rejection(() => check.verify(wire, undefined, NOW + 31_000))).toBe('STALE')
  })

  it('bounds the replay cache', () => {
    const check = new EnvelopeVerifier({ selfPeerId: receiver.peerId, operations: new Set(['getattr']), knowsVolume: () => true, replayCacheEntries: 2 })
    const seal = (at: number) => sealEnvelope(sender, receiver.peerId, { op: 'getattr', volume: 'v' }, at)
    check.verify(seal(NOW), undefined, NOW)
    check.verify(seal(NOW), undefined, NOW)
    expect(rejection(() => check.verify(seal(NOW), undefined, NOW))).toBe('REPLAY_CACHE_FULL')
    // Once the first nonces can no longer be fresh, they are forgotten and room returns.
    expect(check.verify(seal(NOW + 40_000), undefined, NOW + 40_000).op).toBe('getattr')
  })
})

describe('ed25519 implementations', () => {
  it('node:crypto and noble agree', async () => {
    const seed = Buffer.alloc(32, 9)
    const nodeKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
    const nodePublic = createPublicKey(nodeKey).export({ format: 'der', type: 'spki' }).subarray(12)
    const noblePublic = await ed.getPublicKeyAsync(seed)
    expect(Buffer.from(noblePublic).equals(nodePublic)).toBe(true)

    const message = Buffer.from('the exact bytes that travel')
    const nodeSignature = sign(null, message, nodeKey)
    const nobleSignature = await ed.signAsync(message, seed)
    expect(Buffer.from(nobleSignature).equals(nodeSignature)).toBe(true)
    expect(await ed.verifyAsync(nodeSignature, message, noblePublic)).toBe(true)
    expect(verify(null, message, createPublicKey(nodeKey), nobleSignature)).toBe(true)
  })
})
