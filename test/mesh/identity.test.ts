import fs from 'node:fs'
import path from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { EnvelopeVerifier, sealEnvelope } from '../../src/mesh/envelope.js'
import { IdentityError, loadOrCreateIdentity } from '../../src/mesh/identity.js'
import { makeTempDir } from '../helpers/node.js'

describe('node identity', () => {
  it('is created once with mode 0600', async () => {
    const dataDir = makeTempDir()
    const first = await loadOrCreateIdentity(dataDir)
    expect(fs.statSync(first.keyPath).mode & 0o777).toBe(0o600)
    expect(first.peerId).toMatch(/^12D3KooW/)
    const again = await loadOrCreateIdentity(dataDir)
    expect(again.peerId).toBe(first.peerId)
  })

  it('signs envelopes others verify', async () => {
    const sender = await loadOrCreateIdentity(makeTempDir())
    const receiver = await loadOrCreateIdentity(makeTempDir())
    const verifier = new EnvelopeVerifier({ selfPeerId: receiver.peerId, operations: new Set(['getattr']), knowsVolume: () => true })
    const envelope = verifier.verify(sealEnvelope(sender, receiver.peerId, { op: 'getattr', volume: 'v' }))
    expect(envelope.from).toBe(sender.peerId)
  })

  it('rejects a key others can read', async () => {
    const dataDir = makeTempDir()
    const identity = await loadOrCreateIdentity(dataDir)
    fs.chmodSync(identity.keyPath, 0o644)
    await expect(loadOrCreateIdentity(dataDir)).rejects.toThrow(IdentityError)
    await expect(loadOrCreateIdentity(dataDir)).rejects.toThrow(/chmod 600/)
  })

  it('rejects a corrupt key file', async () => {
    const dataDir = makeTempDir()
    fs.writeFileSync(path.join(dataDir, 'node.key'), 'not a key', { mode: 0o600 })
    await expect(loadOrCreateIdentity(dataDir)).rejects.toThrow(/is not a private key/)
  })

  it('rejects a key of another type', async () => {
    const dataDir = makeTempDir()
    const secp = await generateKeyPair('secp256k1')
    fs.writeFileSync(path.join(dataDir, 'node.key'), privateKeyToProtobuf(secp), { mode: 0o600 })
    await expect(loadOrCreateIdentity(dataDir)).rejects.toThrow(/needs an Ed25519 key/)
  })
})
