// A mesh peer in its own process for the advert tests, built on the compiled node (npm run build).
//
//   node advert-peer.mjs DATA_DIR [--name NAME] [--share a,b] [--bootstrap ADDR,...]
//                                 [--refresh-ms N] [--ttl-ms N]
//   node advert-peer.mjs DATA_DIR --attacker [--forge PEER_ID,...] [--flood-response]
//                                 [--bootstrap ADDR,...]
//
// The first stdout line is {"peerId", "addresses"}. Then each stdin line is a command and gets
// one JSON line back:
//   share a,b       shares volumes a and b (id and name alike); "share" alone shares none
//   view            prints {volumes, peers, topicPeers, meshPeers}
//   find NODE VOL   prints {found} with the advert or null
//   attack          attacker only: publishes invalid records, then one valid sentinel record
//   quit            stops the advert service and the node cleanly, then exits
// Logs (pino, level warn) go to stderr, one JSON object a line.
//
// The attacker runs no AdvertService. It publishes raw bytes on the advert topic and responds to
// the query protocol with forged records. Its records use three keys: its own node key (publisher
// "attacker"), and two extra keys from subdirectories of DATA_DIR for the gossip sentinel and
// the valid record in its query response. With --flood-response, its query response is a valid
// record followed by 5 MiB of filler, which exceeds the response size limit.

import { sign } from 'node:crypto'
import path from 'node:path'
import readline from 'node:readline'
import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { encode, Encoder } from 'cbor-x'
import { pino } from 'pino'
import { ADVERT_PROTOCOL, ADVERT_TOPIC, AdvertService } from '../../dist/src/mesh/adverts.js'
import { signedWire } from '../../dist/src/mesh/envelope.js'
import { loadOrCreateIdentity } from '../../dist/src/mesh/identity.js'
import { createMeshNode } from '../../dist/src/mesh/libp2p.js'

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string', default: 'node' },
    share: { type: 'string', default: '' },
    bootstrap: { type: 'string', default: '' },
    'refresh-ms': { type: 'string', default: '10000' },
    'ttl-ms': { type: 'string', default: '30000' },
    attacker: { type: 'boolean', default: false },
    forge: { type: 'string', default: '' },
    'flood-response': { type: 'boolean', default: false }
  }
})
const dataDir = positionals[0]
const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'warn' }, pino.destination({ fd: 2, sync: true }))

function listOf(text) {
  return text.split(',').filter((item) => item.length > 0)
}

function volumesOf(names) {
  return names.map((name) => ({ id: name, name, accessMode: 'read-write', storageClass: 'persistent', sizeLimitBytes: null }))
}

function print(value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

const identity = await loadOrCreateIdentity(dataDir)
const node = await createMeshNode({ identity, listen: ['/ip4/127.0.0.1/tcp/0'], trustedPeers: 'any', logger })
const pubsub = node.services.pubsub

let service = null
let attack = null
if (options.attacker) {
  attack = await prepareAttack()
  pubsub.subscribe(ADVERT_TOPIC)
  await node.handle(ADVERT_PROTOCOL, async (stream) => {
    try {
      stream.send(encode(options['flood-response'] ? attack.floodResponse : attack.queryResponse))
      await stream.close()
    } catch (error) {
      // The receiver resets the stream of an oversized response.
      logger.info({ err: error }, 'query response not delivered')
    }
  })
} else {
  service = new AdvertService({
    node,
    identity,
    nodeName: options.name,
    logger,
    refreshMs: Number(options['refresh-ms']),
    ttlMs: Number(options['ttl-ms'])
  })
  service.setVolumes(volumesOf(listOf(options.share)))
  await service.start()
}

for (const address of listOf(options.bootstrap)) {
  await node.dial(multiaddr(address), { signal: AbortSignal.timeout(5000) })
}
print({ peerId: node.peerId.toString(), addresses: node.getMultiaddrs().map(String) })

const commands = readline.createInterface({ input: process.stdin })
for await (const line of commands) {
  const [command, ...args] = line.trim().split(/\s+/)
  try {
    await run(command, args)
  } catch (error) {
    print({ error: error.message })
  }
}

async function run(command, args) {
  const topic = { topicPeers: pubsub.getSubscribers(ADVERT_TOPIC).map(String), meshPeers: pubsub.getMeshPeers(ADVERT_TOPIC) }
  if (command === 'view') {
    print({ volumes: service?.volumes() ?? [], peers: service?.peers() ?? [], ...topic })
  } else if (command === 'share') {
    service.setVolumes(volumesOf(listOf(args[0] ?? '')))
    print({ ok: true })
  } else if (command === 'find') {
    print({ found: service.find(args[0], args[1]) ?? null })
  } else if (command === 'attack') {
    const published = []
    for (const [label, wire] of attack.gossip) {
      await pubsub.publish(ADVERT_TOPIC, wire)
      published.push(label)
    }
    print({ published })
  } else if (command === 'quit') {
    await service?.stop()
    await node.stop()
    print({ stopped: true })
    process.exit(0)
  } else {
    print({ error: `unknown command ${command}` })
  }
}

/**
 * Builds the attacker's records. Every invalid record that names the attacker as publisher has
 * a higher seq than its valid record "attacker-current", so accepting any of them would replace
 * that volume in the receiver's view.
 */
async function prepareAttack() {
  const sentinel = await loadOrCreateIdentity(path.join(dataDir, 'sentinel'))
  const relayed = await loadOrCreateIdentity(path.join(dataDir, 'relayed'))
  const forged = listOf(options.forge)
  const now = Date.now()

  const body = (signer, seq, volumeNames, changes = {}) => ({
    v: 1,
    peer: signer.peerId,
    key: signer.publicKey,
    name: 'attacker',
    seq,
    iat: now,
    ttl: 30_000,
    volumes: volumesOf(volumeNames),
    ...changes
  })
  const signed = (signer, fields) => signedWire(signer, encode(fields))
  const badSignature = (signer, fields) => encode([encode(fields), sign(null, Buffer.from('other bytes'), signer.privateKey)])

  const older = signed(identity, body(identity, 1000, ['replayed']))
  const longName = 'n'.repeat(250)
  const gossip = [
    ['older record, accepted for now', older],
    ['current record', signed(identity, body(identity, 2000, ['attacker-current']))],
    ['replay of the older record', older],
    ['same seq, other volumes', signed(identity, body(identity, 2000, ['same-seq']))],
    ['garbage', Buffer.from('this is not CBOR at all \u00ff\u00fe')],
    ['CBOR that is no record', encode({ hello: 'world' })],
    ['bad signature', badSignature(identity, body(identity, 3000, ['bad-signature']))],
    ['expired', signed(identity, body(identity, 3001, ['expired'], { iat: now - 60_000 }))],
    ['from the future', signed(identity, body(identity, 3002, ['future'], { iat: now + 120_000 }))],
    ['oversized', signed(identity, body(identity, 3003, Array.from({ length: 300 }, (_, i) => `${longName}${i}`)))],
    ['invalid access mode', signed(identity, body(identity, 3004, [], { volumes: [{ ...volumesOf(['bad-mode'])[0], accessMode: 'rwx' }] }))],
    ['string size limit', signed(identity, body(identity, 3005, [], { volumes: [{ ...volumesOf(['bad-size'])[0], sizeLimitBytes: '10' }] }))],
    ['unsupported version', signed(identity, body(identity, 3006, ['bad-version'], { v: 2 }))],
    ['1025 volumes in compact CBOR', signedWire(identity, new Encoder({ useRecords: true }).encode(body(identity, 3007, Array.from({ length: 1025 }, (_, i) => `m${i}`))))]
  ]
  // Records forged for another publisher carry the highest seq there is, so that accepting one
  // would replace that publisher's real record.
  const topSeq = Number.MAX_SAFE_INTEGER
  for (const peer of forged) {
    // The attacker's own key under another publisher's peer id, and that publisher's real key
    // (which an Ed25519 peer id contains) with the attacker's signature.
    gossip.push([`key of another peer for ${peer}`, signed(identity, body(identity, topSeq, ['forged-key-mismatch'], { peer }))])
    const realKey = peerIdFromString(peer).publicKey.raw
    gossip.push([`signature of another peer for ${peer}`, signed(identity, body(identity, topSeq, ['forged-signature'], { peer, key: realKey }))])
  }
  gossip.push(['sentinel', signed(sentinel, body(sentinel, 1000, ['sentinel']))])

  const queryResponse = [
    Buffer.from('garbage in a query response'),
    42,
    signed(relayed, body(relayed, 2000, ['via-query'])),
    signed(relayed, body(relayed, 1500, ['query-stale'])),
    badSignature(relayed, body(relayed, 3000, ['query-bad-signature'])),
    ...forged.map((peer) => signed(identity, body(identity, topSeq, ['query-forged'], { peer })))
  ]
  const floodResponse = [signed(identity, body(identity, 1, ['flood-visible'])), Buffer.alloc(5 * 1024 * 1024)]
  return { gossip, queryResponse, floodResponse }
}
