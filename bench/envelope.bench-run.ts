// SealEnvelope signing and verification rates: the verifier runs on every remote request, so it
// must not be the bottleneck. Also the raw Ed25519 rates of node:crypto and @noble/ed25519.

import { createPublicKey, sign, verify } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { expect, it } from 'vitest'
import { EnvelopeVerifier, sealEnvelope } from '../src/mesh/envelope.js'
import { loadOrCreateIdentity } from '../src/mesh/identity.js'
import { makeTempDir } from '../test/helpers/node.js'

const DURATION_MS = 2_000

/** Calls `action` repeatedly for DURATION_MS and returns the calls per second. */
async function rate(action: () => unknown | Promise<unknown>): Promise<number> {
  const started = performance.now()
  let calls = 0
  while (performance.now() - started < DURATION_MS) {
    await action()
    calls++
  }
  return calls / ((performance.now() - started) / 1000)
}

it('envelope sign and verify rates', async () => {
  const sender = await loadOrCreateIdentity(makeTempDir())
  const receiver = await loadOrCreateIdentity(makeTempDir())
  const verifier = new EnvelopeVerifier({ selfPeerId: receiver.peerId, operations: new Set(['read_at']), knowsVolume: () => true, replayCacheEntries: 10_000_000 })
  const request = { op: 'read_at', volume: 'vol-1', path: '/datasets/shard-0001.bin', args: { offset: 1_048_576, length: 4096 } }

  const sealRate = await rate(() => sealEnvelope(sender, receiver.peerId, request))
  const envelopes: Uint8Array[] = []
  for (let i = 0; i < 200_000; i++) envelopes.push(sealEnvelope(sender, receiver.peerId, request))
  let next = 0
  const verifyRate = await rate(() => verifier.verify(envelopes[next++ % envelopes.length]))

  const message = Buffer.alloc(200, 7)
  const seed = sender.libp2pKey.raw.subarray(0, 32)
  const signature = sign(null, message, sender.privateKey)
  const publicKey = createPublicKey(sender.privateKey)
  const nodeVerifyRate = await rate(() => verify(null, message, publicKey, signature))
  const nobleVerifyRate = await rate(() => ed.verifyAsync(signature, message, sender.publicKey))
  const nobleSignRate = await rate(() => ed.signAsync(message, seed))
  const nodeSignRate = await rate(() => sign(null, message, sender.privateKey))

  const rows = [
    ['seal (encode + sign) an envelope', sealRate],
    ['verify an envelope (decode, key, signature, freshness, nonce)', verifyRate],
    ['Ed25519 sign, node:crypto', nodeSignRate],
    ['Ed25519 sign, @noble/ed25519', nobleSignRate],
    ['Ed25519 verify, node:crypto', nodeVerifyRate],
    ['Ed25519 verify, @noble/ed25519', nobleVerifyRate]
  ] as const
  const table = ['| Operation | per second |', '|---|---:|', ...rows.map(([name, value]) => `| ${name} | ${Math.round(value).toLocaleString('en-US')} |`)].join('\n')
  process.stdout.write(`\nOne core, ${DURATION_MS / 1000} s per figure.\n\n${table}\n`)
  expect(verifyRate).toBeGreaterThan(0)
}, 120_000)
