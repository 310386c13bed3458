// A hostile mesh peer for the tests: it connects to an owner node with its own trusted identity
// and sends envelopes crafted to fail one check each, printing the owner's reply to each as a
// JSON line. Usage: seal-craft.mjs DATA_DIR OTHER_DATA_DIR OWNER_ADDRESS VOLUME
// OTHER_DATA_DIR holds another node's key, used to sign an envelope this peer then forwards.
// Uses the compiled node (npm run build).

import { sign } from 'node:crypto'
import { decode, encode } from 'cbor-x'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { loadOrCreateIdentity } from '../../dist/src/mesh/identity.js'
import { createMeshNode } from '../../dist/src/mesh/libp2p.js'
import { sealEnvelope, signedWire } from '../../dist/src/mesh/envelope.js'
import { SealClient } from '../../dist/src/mesh/seal-client.js'

const [dataDir, otherDataDir, ownerAddress, volume] = process.argv.slice(2)
const identity = await loadOrCreateIdentity(dataDir)
const other = await loadOrCreateIdentity(otherDataDir)
const owner = ownerAddress.slice(ownerAddress.lastIndexOf('/p2p/') + 5)
const node = await createMeshNode({ identity, listen: ['/ip4/127.0.0.1/tcp/0'], trustedPeers: 'any', logger: pino({ level: 'silent' }) })
await node.dial(multiaddr(ownerAddress), { signal: AbortSignal.timeout(5000) })
const client = new SealClient({ node, identity, logger: pino({ level: 'silent' }), timeoutMs: 5000 })

const request = { op: 'getattr', volume, args: {} }
/** Re-signs a modified envelope body with `signer`. */
const resign = (body, signer = identity) => signedWire(signer, encode(body))
const bodyOf = (wire) => decode(decode(wire)[0])

const cases = {
  valid: () => sealEnvelope(identity, owner, request),
  tampered: () => {
    // One bit of the nonce flipped: still well-formed CBOR, but no longer what was signed.
    const [body, signature] = decode(sealEnvelope(identity, owner, request))
    const changed = Buffer.from(body)
    changed[changed.indexOf(Buffer.from(decode(body).nonce)) + 3] ^= 1
    return encode([changed, signature])
  },
  wrong_key: () => resign({ ...bodyOf(sealEnvelope(identity, owner, request)), key: other.publicKey }),
  bad_signature: () => {
    const [body] = decode(sealEnvelope(identity, owner, request))
    return encode([body, sign(null, body, other.privateKey)])
  },
  wrong_recipient: () => sealEnvelope(identity, other.peerId, request),
  stale: () => sealEnvelope(identity, owner, request, Date.now() - 120_000),
  future: () => sealEnvelope(identity, owner, request, Date.now() + 120_000),
  truncated: () => sealEnvelope(identity, owner, request).subarray(0, 40),
  unknown_operation: () => sealEnvelope(identity, owner, { ...request, op: 'format_disk' }),
  unknown_volume: () => sealEnvelope(identity, owner, { ...request, volume: 'not-shared' }),
  data_mismatch: () => ({ wire: sealEnvelope(identity, owner, { op: 'write_at', volume, args: { offset: 0, stable: 2 }, data: Buffer.from('signed') }), data: Buffer.from('sent!!') }),
  forwarded: () => sealEnvelope(other, owner, request),
  denied_operation: () => sealEnvelope(identity, owner, { op: 'mkdir', volume, args: { name: 'made-by-d', mode: 0o755 } }),
  forged_handle: () => sealEnvelope(identity, owner, { ...request, handle: Buffer.alloc(38, 7) }),
  dot_dot_name: () => sealEnvelope(identity, owner, { op: 'lookup', volume, args: { name: '..' } }),
  slash_name: () => sealEnvelope(identity, owner, { op: 'lookup', volume, args: { name: '../../etc' } })
}

async function send(wire, data = null) {
  try {
    const reply = await client.callRaw(owner, wire, data)
    return { ok: true, result: reply.result === undefined ? null : 'result' }
  } catch (error) {
    return { ok: false, code: error.code, rejected: error.rejected ?? null, message: error.message }
  }
}

for (const [name, build] of Object.entries(cases)) {
  const built = build()
  const outcome = built instanceof Uint8Array ? await send(built) : await send(built.wire, built.data)
  process.stdout.write(JSON.stringify({ case: name, ...outcome }) + '\n')
}
// A replay: the same valid bytes twice; the second must be refused.
const wire = sealEnvelope(identity, owner, request)
process.stdout.write(JSON.stringify({ case: 'first_send', ...(await send(wire)) }) + '\n')
process.stdout.write(JSON.stringify({ case: 'replayed', ...(await send(wire)) }) + '\n')

client.close()
await node.stop()
process.exit(0)
