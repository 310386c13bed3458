// Volume adverts between mesh peers in separate processes on loopback: gossip, the catch-up
// query, withdrawal, expiry, and records forged by an attacker. The record checks and the record
// store also run in this process, against hand-built records and a stand-in libp2p node.

import { spawn, type ChildProcess } from 'node:child_process'
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { peerIdFromString } from '@libp2p/peer-id'
import { Encoder, encode } from 'cbor-x'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ADVERT_TOPIC,
  AdvertRejected,
  AdvertService,
  InvalidSharedVolumes,
  MAX_PEERS,
  MAX_RECORD_BYTES,
  verifyAdvert,
  type AdvertRejectionCode,
  type PeerView,
  type SharedVolume,
  type VolumeAdvert
} from '../../src/mesh/adverts.js'
import { peerIdOfKey, signedWire, type SealIdentity } from '../../src/mesh/envelope.js'
import { loadOrCreateIdentity } from '../../src/mesh/identity.js'
import type { MeshNode } from '../../src/mesh/libp2p.js'

const testDir = path.dirname(fileURLToPath(import.meta.url))
const peerScript = path.join(testDir, 'advert-peer.mjs')

interface PeerState {
  volumes: VolumeAdvert[]
  peers: PeerView[]
  topicPeers: string[]
  meshPeers: string[]
}

/** One advert-peer.mjs process. Each command written to its stdin produces one stdout line. */
class PeerProcess {
  peerId = ''
  addresses: string[] = []
  logs = ''
  private readonly child: ChildProcess
  private output = ''
  private readonly waiting: Array<{ resolve: (line: Record<string, unknown>) => void; reject: (error: Error) => void }> = []
  private exited = false

  constructor(
    readonly label: string,
    readonly dataDir: string,
    args: string[]
  ) {
    this.child = spawn(process.execPath, [peerScript, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.child.stderr!.on('data', (chunk: Buffer) => (this.logs += chunk.toString()))
    this.child.stdout!.on('data', (chunk: Buffer) => this.onOutput(chunk.toString()))
    this.child.once('exit', (code, signal) => {
      this.exited = true
      for (const waiter of this.waiting.splice(0)) waiter.reject(new Error(`peer ${label} exited (${code ?? signal}) before responding: ${this.logs}`))
    })
  }

  /** Resolves when the peer prints its peer id and addresses. */
  async ready(): Promise<this> {
    const line = await this.nextLine(20_000)
    this.peerId = line.peerId as string
    this.addresses = line.addresses as string[]
    return this
  }

  async command(text: string): Promise<Record<string, unknown>> {
    if (this.exited) throw new Error(`peer ${this.label} has exited`)
    const line = this.nextLine(10_000)
    this.child.stdin!.write(`${text}\n`)
    const response = await line
    if (response.error !== undefined) throw new Error(`peer ${this.label} failed "${text}": ${String(response.error)}`)
    return response
  }

  async view(): Promise<PeerState> {
    return (await this.command('view')) as unknown as PeerState
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.child.kill(signal)
  }

  exitCode(): Promise<number | null> {
    if (this.exited) return Promise.resolve(this.child.exitCode)
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
  }

  private nextLine(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer ${this.label} printed nothing within ${timeoutMs} ms: ${this.logs}`)), timeoutMs)
      this.waiting.push({
        resolve: (line) => {
          clearTimeout(timer)
          resolve(line)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        }
      })
    })
  }

  private onOutput(text: string): void {
    this.output += text
    let newline = this.output.indexOf('\n')
    while (newline >= 0) {
      const line = JSON.parse(this.output.slice(0, newline)) as Record<string, unknown>
      this.output = this.output.slice(newline + 1)
      this.waiting.shift()?.resolve(line)
      newline = this.output.indexOf('\n')
    }
  }
}

const peers: PeerProcess[] = []
const tempDirs: string[] = []

/**
 * Creates a temporary directory. Local rather than from test/helpers/node.ts, because that module
 * loads the whole node and its native addon, which this test does not need.
 */
function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

function startPeer(label: string, options: { share?: string[]; bootstrap?: PeerProcess[]; refreshMs?: number; ttlMs?: number; extra?: string[] }): Promise<PeerProcess> {
  const dataDir = makeTempDir(`aegis-advert-${label}-`)
  tempDirs.push(dataDir)
  const args = [dataDir, '--name', `node-${label}`, '--share', (options.share ?? []).join(',')]
  args.push('--bootstrap', (options.bootstrap ?? []).map((peer) => peer.addresses[0]).join(','))
  args.push('--refresh-ms', String(options.refreshMs ?? 60_000), '--ttl-ms', String(options.ttlMs ?? 120_000))
  const peer = new PeerProcess(label, dataDir, [...args, ...(options.extra ?? [])])
  peers.push(peer)
  return peer.ready()
}

/** Polls a peer's view until `check` returns true; fails with the last view after `timeoutMs`. */
async function waitForView(peer: PeerProcess, description: string, check: (state: PeerState) => boolean, timeoutMs = 5000): Promise<PeerState> {
  const deadline = Date.now() + timeoutMs
  let state = await peer.view()
  while (!check(state)) {
    if (Date.now() > deadline) throw new Error(`${peer.label} did not see ${description} within ${timeoutMs} ms; last view: ${JSON.stringify(state.volumes)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    state = await peer.view()
  }
  return state
}

/** Returns the volume ids of one owner, sorted, because volumes() sorts by owner then id. */
function volumeIdsOf(state: PeerState, owner: PeerProcess): string[] {
  return state.volumes.filter((volume) => volume.owner === owner.peerId).map((volume) => volume.id)
}

/** Returns the 'volume advert rejected' log lines that a peer has written so far. */
function rejectionsLogged(peer: PeerProcess): Array<{ peer: string; via: string; code: string }> {
  const completeLines = peer.logs.split('\n').slice(0, -1)
  return completeLines
    .filter((line) => line.includes('"volume advert rejected"'))
    .map((line) => JSON.parse(line) as { peer: string; via: string; code: string })
}

function sameIds(actual: string[], expected: string[]): boolean {
  return JSON.stringify([...actual].sort()) === JSON.stringify([...expected].sort())
}

describe('volume adverts between processes', () => {
  let a: PeerProcess
  let b: PeerProcess
  let c: PeerProcess
  let d: PeerProcess

  beforeAll(async () => {
    if (!fs.existsSync(path.join(testDir, '../../dist/src/mesh/adverts.js'))) throw new Error('dist is missing; run "npm run build" first (npm test does)')
    // A 60 s refresh and a 120 s ttl: within a test, only gossip on a change, the catch-up
    // query or a withdrawal can move a record.
    a = await startPeer('a', { share: ['a1', 'a2'] })
    ;[b, c] = await Promise.all([startPeer('b', { share: ['b1', 'b2'], bootstrap: [a] }), startPeer('c', { share: ['c1'], bootstrap: [a] })])
  })

  afterAll(() => {
    for (const peer of peers) peer.kill()
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  })

  it('newcomer catches up by query', async () => {
    // A learned B's and C's records by querying them when they connected. No node has published
    // since, so gossip cannot deliver them to D before the 60 s refresh.
    await waitForView(a, "B's and C's volumes", (state) => sameIds(volumeIdsOf(state, b), ['b1', 'b2']) && sameIds(volumeIdsOf(state, c), ['c1']))

    const startedAt = Date.now()
    d = await startPeer('d', { share: ['d1'], bootstrap: [a] })
    const state = await waitForView(d, 'the volumes of A, B and C', (view) => view.volumes.length === 6)
    expect(Date.now() - startedAt).toBeLessThan(10_000)

    expect(volumeIdsOf(state, a)).toEqual(['a1', 'a2'])
    expect(volumeIdsOf(state, b)).toEqual(['b1', 'b2'])
    expect(volumeIdsOf(state, c)).toEqual(['c1'])
    expect(volumeIdsOf(state, d)).toEqual(['d1'])
    const fromB = state.volumes.find((volume) => volume.id === 'b1')!
    expect(fromB.ownerName).toBe('node-b')
    expect(fromB.accessMode).toBe('read-write')
    expect(fromB.expiresAt).toBeGreaterThan(Date.now() + 60_000)

    // D reached B's and C's records only through A, so A relayed them.
    const dPeers = new Map(state.peers.map((view) => [view.peerId, view]))
    expect(dPeers.get(a.peerId)?.connected).toBe(true)
    expect(dPeers.get(b.peerId)?.connected).toBe(false)
    expect(dPeers.get(b.peerId)?.nodeName).toBe('node-b')
    expect(dPeers.get(b.peerId)?.volumes).toBe(2)

    // A queried D in return.
    await waitForView(a, "D's volume", (view) => sameIds(volumeIdsOf(view, d), ['d1']))
  })

  it('gossip carries a changed list', async () => {
    // Gossipsub 17 sends a node's own messages to every peer known to subscribe to the topic
    // (floodPublish is on by default), so B and C only need to know that A subscribed.
    await waitForView(b, 'A subscribed', (state) => state.topicPeers.includes(a.peerId))
    await waitForView(c, 'A subscribed', (state) => state.topicPeers.includes(a.peerId))

    await b.command('share b1,b2,b3')
    await c.command('share c1,c2')
    const state = await waitForView(a, 'b3 and c2', (view) => volumeIdsOf(view, b).includes('b3') && volumeIdsOf(view, c).includes('c2'))
    expect(volumeIdsOf(state, a)).toEqual(['a1', 'a2'])
    expect(volumeIdsOf(state, b)).toEqual(['b1', 'b2', 'b3'])
    expect(volumeIdsOf(state, c)).toEqual(['c1', 'c2'])

    // B and C are connected only to A, so B saw C's change through A's mesh.
    await waitForView(b, 'c2 relayed by A', (view) => volumeIdsOf(view, c).includes('c2'))
  })

  it('find by peer id or node name', async () => {
    const byName = (await a.command('find node-b b3')).found as VolumeAdvert | null
    expect(byName?.owner).toBe(b.peerId)
    expect(byName?.id).toBe('b3')

    const byPeerId = (await a.command(`find ${c.peerId} c2`)).found as VolumeAdvert | null
    expect(byPeerId?.ownerName).toBe('node-c')

    const own = (await a.command('find node-a a1')).found as VolumeAdvert | null
    expect(own?.owner).toBe(a.peerId)

    expect((await a.command('find node-b c1')).found).toBeNull()
    expect((await a.command('find node-unknown a1')).found).toBeNull()
  })

  it('withdrawn volume disappears', async () => {
    await waitForView(a, 'b2', (state) => volumeIdsOf(state, b).includes('b2'))
    await b.command('share b1,b3')
    const state = await waitForView(a, 'b2 withdrawn', (view) => !volumeIdsOf(view, b).includes('b2'))
    expect(volumeIdsOf(state, b)).toEqual(['b1', 'b3'])
  })

  it('clean stop withdraws every volume', async () => {
    await waitForView(a, "B's volumes", (state) => volumeIdsOf(state, b).length === 2)
    await b.command('quit')
    expect(await b.exitCode()).toBe(0)

    // The ttl is 120 s, so only the empty record B published while stopping explains this.
    const state = await waitForView(a, "B's volumes gone", (view) => volumeIdsOf(view, b).length === 0)
    expect(volumeIdsOf(state, c)).toEqual(['c1', 'c2'])
    await waitForView(a, 'B disconnected', (view) => view.peers.some((peer) => peer.peerId === b.peerId && !peer.connected))
  })

  it('killed peer expires after ttl', async () => {
    const ttlMs = 1500
    const e = await startPeer('e', { share: ['e1'], bootstrap: [a], refreshMs: 500, ttlMs })
    const before = await waitForView(a, "E's volume", (state) => sameIds(volumeIdsOf(state, e), ['e1']))
    const advert = before.volumes.find((volume) => volume.owner === e.peerId)!
    expect(advert.expiresAt).toBeLessThanOrEqual(Date.now() + ttlMs)

    // Refreshes keep the record alive past its first ttl.
    await new Promise((resolve) => setTimeout(resolve, 2 * ttlMs))
    expect(volumeIdsOf(await a.view(), e)).toEqual(['e1'])

    e.kill('SIGKILL')
    const killedAt = Date.now()
    await e.exitCode()
    await waitForView(a, "E's record expired", (state) => volumeIdsOf(state, e).length === 0, ttlMs + 3000)
    expect(Date.now() - killedAt).toBeLessThan(ttlMs + 3000)
    expect(volumeIdsOf(await a.view(), c)).toEqual(['c1', 'c2'])
  })

  it('oversized query response is rejected', async () => {
    const flooder = await startPeer('flooder', { bootstrap: [a], extra: ['--attacker', '--flood-response'] })
    const deadline = Date.now() + 5000
    while (!rejectionsLogged(a).some((entry) => entry.peer === flooder.peerId && entry.via === 'query' && entry.code === 'OVERSIZED')) {
      if (Date.now() > deadline) throw new Error(`A logged no OVERSIZED query response from the flooder within 5 s: ${a.logs}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }

    // The response began with a valid record; past the size limit none of it is used.
    expect(volumeIdsOf(await a.view(), flooder)).toEqual([])
  })

  it('forged records are rejected', async () => {
    const attacker = await startPeer('attacker', { bootstrap: [a], extra: ['--attacker', '--forge', `${c.peerId},${a.peerId}`] })
    const sentinelId = (await loadOrCreateIdentity(path.join(attacker.dataDir, 'sentinel'))).peerId
    const relayedId = (await loadOrCreateIdentity(path.join(attacker.dataDir, 'relayed'))).peerId

    // The query response is handled when A connects: its valid record appears, the rest must not.
    await waitForView(a, 'the valid record of the query response', (state) => state.volumes.some((volume) => volume.id === 'via-query'))

    await waitForView(attacker, 'A subscribed', (state) => state.topicPeers.includes(a.peerId))
    const { published } = (await attacker.command('attack')) as { published: string[] }
    expect(published.at(-1)).toBe('sentinel')

    // Gossip from one peer arrives in order, so the sentinel comes after every invalid record.
    const state = await waitForView(a, 'the sentinel', (view) => view.volumes.some((volume) => volume.id === 'sentinel'))
    const owners = new Set(state.volumes.map((volume) => volume.owner))
    expect([...owners].sort()).toEqual([a.peerId, c.peerId, attacker.peerId, sentinelId, relayedId, d.peerId].sort())
    expect(volumeIdsOf(state, attacker)).toEqual(['attacker-current'])
    expect(volumeIdsOf(state, a)).toEqual(['a1', 'a2'])
    expect(volumeIdsOf(state, c)).toEqual(['c1', 'c2'])
    expect(state.volumes.filter((volume) => volume.owner === relayedId).map((volume) => volume.id)).toEqual(['via-query'])
    expect(state.volumes.filter((volume) => volume.owner === sentinelId).map((volume) => volume.id)).toEqual(['sentinel'])

    // Each rejection is logged with its code, and A still responds. Older records (the replayed
    // seq) are normal gossip and logged at debug only; the view above shows they were ignored.
    const codes = new Set(rejectionsLogged(a).map((entry) => entry.code))
    for (const code of ['MALFORMED', 'OVERSIZED', 'BAD_VERSION', 'KEY_MISMATCH', 'BAD_SIGNATURE', 'EXPIRED', 'FROM_FUTURE']) {
      expect(codes, code).toContain(code)
    }
    expect((await a.view()).volumes.length).toBe(state.volumes.length)
  })
})

/** DER prefix of an Ed25519 PKCS #8 private key (RFC 8410); the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/**
 * Creates an Ed25519 identity that exists only in memory. The key comes from a random seed rather
 * than generateKeyPairSync, because Node.js 20.20 can deadlock when it exports such a key. The
 * export holds the key's lock while it allocates, and the garbage collection this may start
 * finalizes the key generation job, which waits for the same lock (seen in a gdb stack of a hung
 * test worker).
 */
function memoryIdentity(): SealIdentity {
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, randomBytes(32)]), format: 'der', type: 'pkcs8' })
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32)
  return { peerId: peerIdOfKey(raw), publicKey: raw, privateKey }
}

function volumesNamed(...ids: string[]): SharedVolume[] {
  return ids.map((id) => ({ id, name: `${id}-name`, accessMode: 'read-only', storageClass: 'persistent', sizeLimitBytes: null }))
}

describe('verifyAdvert', () => {
  const identity = memoryIdentity()
  const other = memoryIdentity()
  const now = 1_700_000_000_000

  function body(changes: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      v: 1,
      peer: identity.peerId,
      key: identity.publicKey,
      name: 'node-a',
      seq: now,
      iat: now,
      ttl: 30_000,
      volumes: [{ id: 'v1', name: 'scratch', accessMode: 'read-only', storageClass: 'persistent', sizeLimitBytes: 1024 }],
      ...changes
    }
  }

  function rejectionOf(wire: Uint8Array): AdvertRejectionCode | 'accepted' {
    try {
      verifyAdvert(wire, now)
      return 'accepted'
    } catch (error) {
      if (error instanceof AdvertRejected) return error.code
      throw error
    }
  }

  it('accepts a valid record', () => {
    const record = verifyAdvert(signedWire(identity, encode(body())), now)
    expect(record.peer).toBe(identity.peerId)
    expect(record.volumes).toEqual([{ id: 'v1', name: 'scratch', accessMode: 'read-only', storageClass: 'persistent', sizeLimitBytes: 1024 }])
  })

  it('drops unknown volume fields', () => {
    const volumes = [{ id: 'v1', name: 'scratch', accessMode: 'read-only', storageClass: 'persistent', sizeLimitBytes: null, extra: 'x' }]
    const record = verifyAdvert(signedWire(identity, encode(body({ volumes }))), now)
    expect(Object.keys(record.volumes[0]).sort()).toEqual(['accessMode', 'id', 'name', 'sizeLimitBytes', 'storageClass'])
  })

  it('rejects each invalid record', () => {
    const volume = (changes: Record<string, unknown>) => [{ id: 'v1', name: 'scratch', accessMode: 'read-only', storageClass: 'persistent', sizeLimitBytes: null, ...changes }]
    const cases: Array<[string, Uint8Array, AdvertRejectionCode]> = [
      ['garbage', Buffer.from('not cbor \u00ff'), 'MALFORMED'],
      ['array of three', encode([Buffer.alloc(4), Buffer.alloc(64), 1]), 'MALFORMED'],
      ['short signature', encode([encode(body()), Buffer.alloc(63)]), 'MALFORMED'],
      ['body not a map', signedWire(identity, encode([1, 2])), 'MALFORMED'],
      ['version 2', signedWire(identity, encode(body({ v: 2 }))), 'BAD_VERSION'],
      ['short key', signedWire(identity, encode(body({ key: identity.publicKey.subarray(0, 31) }))), 'MALFORMED'],
      ['key of another peer', signedWire(identity, encode(body({ peer: other.peerId }))), 'KEY_MISMATCH'],
      ['signed by another key', signedWire(other, encode(body())), 'BAD_SIGNATURE'],
      ['seq zero', signedWire(identity, encode(body({ seq: 0 }))), 'MALFORMED'],
      ['seq as text', signedWire(identity, encode(body({ seq: '5' }))), 'MALFORMED'],
      ['fractional iat', signedWire(identity, encode(body({ iat: now + 0.5 }))), 'MALFORMED'],
      ['ttl above an hour', signedWire(identity, encode(body({ ttl: 3_600_001 }))), 'MALFORMED'],
      ['empty node name', signedWire(identity, encode(body({ name: '' }))), 'MALFORMED'],
      ['control character in name', signedWire(identity, encode(body({ name: 'node\nB' }))), 'MALFORMED'],
      ['volumes not an array', signedWire(identity, encode(body({ volumes: { id: 'v1' } }))), 'MALFORMED'],
      ['unknown access mode', signedWire(identity, encode(body({ volumes: volume({ accessMode: 'rwx' }) }))), 'MALFORMED'],
      ['negative size limit', signedWire(identity, encode(body({ volumes: volume({ sizeLimitBytes: -1 }) }))), 'MALFORMED'],
      ['size limit as text', signedWire(identity, encode(body({ volumes: volume({ sizeLimitBytes: '10' }) }))), 'MALFORMED'],
      ['missing storage class', signedWire(identity, encode(body({ volumes: volume({ storageClass: undefined }) }))), 'MALFORMED'],
      ['id of 256 characters', signedWire(identity, encode(body({ volumes: volume({ id: 'x'.repeat(256) }) }))), 'MALFORMED'],
      ['duplicate volume id', signedWire(identity, encode(body({ volumes: [...volume({}), ...volume({ name: 'other' })] }))), 'MALFORMED'],
      ['expired', signedWire(identity, encode(body({ iat: now - 30_000 }))), 'EXPIRED'],
      ['from the future', signedWire(identity, encode(body({ iat: now + 30_001 }))), 'FROM_FUTURE'],
      ['above the byte limit', signedWire(identity, encode(body({ name: 'n'.repeat(200), volumes: Array.from({ length: 300 }, (_, i) => volume({ id: `${'x'.repeat(240)}${i}` })[0]) }))), 'OVERSIZED'],
      [
        '1025 volumes',
        signedWire(identity, new Encoder({ useRecords: true }).encode(body({ volumes: Array.from({ length: 1025 }, (_, i) => volume({ id: `v${i}` })[0]) }))),
        'OVERSIZED'
      ]
    ]
    for (const [name, wire, code] of cases) {
      expect(rejectionOf(wire), name).toBe(code)
    }
  })

  it('limits hold at their bounds', () => {
    expect(rejectionOf(signedWire(identity, encode(body({ iat: now + 30_000 }))))).toBe('accepted')
    expect(rejectionOf(signedWire(identity, encode(body({ iat: now - 29_999 }))))).toBe('accepted')
    expect(rejectionOf(signedWire(identity, encode(body({ volumes: [] }))))).toBe('accepted')
    const compact = new Encoder({ useRecords: true }).encode(body({ volumes: Array.from({ length: 1024 }, (_, i) => ({ id: `v${i}`, name: `v${i}`, accessMode: 'read-only', storageClass: 'persistent', sizeLimitBytes: null })) }))
    const wire = signedWire(identity, compact)
    expect(wire.byteLength).toBeLessThan(MAX_RECORD_BYTES)
    expect(rejectionOf(wire)).toBe('accepted')
  })
})

describe('advert store', () => {
  const self = memoryIdentity()
  const remote = memoryIdentity()
  const start = 1_700_000_000_000
  let clock = start
  const published: Uint8Array[] = []

  /** A libp2p node stand-in: records what is published and lets the test call the topic validator. */
  const validators = new Map<string, (peer: unknown, message: unknown) => string>()
  const node = {
    services: {
      pubsub: {
        topicValidators: validators,
        subscribe: () => undefined,
        unsubscribe: () => undefined,
        publish: async (_topic: string, data: Uint8Array) => {
          published.push(data)
          return { recipients: [] }
        }
      }
    },
    handle: async () => undefined,
    unhandle: async () => undefined,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    getPeers: () => [],
    getConnections: () => []
  } as unknown as MeshNode

  function newService(options: { trustsPeer?: (peerId: string) => boolean } = {}): AdvertService {
    return new AdvertService({ node, identity: self, nodeName: 'self-node', logger: pino({ level: 'silent' }), now: () => clock, ...options })
  }

  function record(signer: SealIdentity, seq: number, volumes: SharedVolume[], changes: Record<string, unknown> = {}): Uint8Array {
    return signedWire(signer, encode({ v: 1, peer: signer.peerId, key: signer.publicKey, name: 'remote-node', seq, iat: clock, ttl: 30_000, volumes, ...changes }))
  }

  /** Hands a record to the service's topic validator as gossipsub would. */
  function deliver(wire: Uint8Array): string {
    const validate = validators.get(ADVERT_TOPIC)!
    return validate(peerIdFromString(remote.peerId), { type: 'unsigned', topic: ADVERT_TOPIC, data: wire })
  }

  function idsOf(service: AdvertService, owner: SealIdentity): string[] {
    return service.volumes().filter((advert) => advert.owner === owner.peerId).map((advert) => advert.id)
  }

  it('keeps the highest seq only', async () => {
    clock = start
    const service = newService()
    await service.start()

    expect(deliver(record(remote, 2, volumesNamed('v2')))).toBe('accept')
    expect(deliver(record(remote, 1, volumesNamed('v1')))).toBe('ignore')
    expect(deliver(record(remote, 2, volumesNamed('other')))).toBe('ignore')
    expect(idsOf(service, remote)).toEqual(['v2'])

    expect(deliver(record(remote, 3, volumesNamed('v3')))).toBe('accept')
    expect(idsOf(service, remote)).toEqual(['v3'])
    expect(deliver(Buffer.from('garbage'))).toBe('reject')
    await service.stop()
  })

  it('expires on the earlier of iat and arrival', async () => {
    clock = start
    const service = newService()
    await service.start()
    const early = memoryIdentity()
    const late = memoryIdentity()

    // Issued 10 s ago: lapses at iat + ttl. Issued 10 s ahead of this clock: lapses at arrival + ttl.
    deliver(record(early, 1, volumesNamed('early'), { iat: start - 10_000 }))
    deliver(record(late, 1, volumesNamed('late'), { iat: start + 10_000 }))
    expect(service.volumes().find((advert) => advert.id === 'early')?.expiresAt).toBe(start + 20_000)
    expect(service.volumes().find((advert) => advert.id === 'late')?.expiresAt).toBe(start + 30_000)

    clock = start + 19_999
    expect(idsOf(service, early)).toEqual(['early'])
    clock = start + 20_000
    expect(idsOf(service, early)).toEqual([])
    expect(idsOf(service, late)).toEqual(['late'])
    clock = start + 30_000
    expect(idsOf(service, late)).toEqual([])
    await service.stop()
  })

  it('own record never replaces own volumes', async () => {
    clock = start
    const service = newService()
    service.setVolumes(volumesNamed('mine'))
    await service.start()

    // The node's own key, a higher seq, and other volumes: as if replayed by a relay.
    expect(deliver(record(self, Number.MAX_SAFE_INTEGER, volumesNamed('injected'), { name: 'self-node' }))).toBe('ignore')
    expect(service.volumes().map((advert) => advert.id)).toEqual(['mine'])
    expect(service.peers()).toEqual([])
    await service.stop()
  })

  it('untrusted publisher is ignored', async () => {
    clock = start
    const service = newService({ trustsPeer: (peerId) => peerId !== remote.peerId })
    await service.start()
    expect(deliver(record(remote, 1, volumesNamed('v1')))).toBe('ignore')
    expect(service.volumes()).toEqual([])
    await service.stop()
  })

  it('stored publishers are capped', async () => {
    clock = start
    const service = newService()
    await service.start()
    for (let i = 0; i < MAX_PEERS; i++) {
      expect(deliver(record(memoryIdentity(), 1, []))).toBe('accept')
    }
    expect(deliver(record(memoryIdentity(), 1, volumesNamed('one-too-many')))).toBe('ignore')
    expect(service.peers().length).toBe(MAX_PEERS)

    // Expired records make room.
    clock = start + 30_000
    expect(deliver(record(memoryIdentity(), 1, volumesNamed('after-expiry')))).toBe('accept')
    expect(service.volumes().map((advert) => advert.id)).toEqual(['after-expiry'])
    await service.stop()
  })

  it('find resolves node names', async () => {
    clock = start
    const service = newService()
    service.setVolumes(volumesNamed('v1'))
    await service.start()
    const twin = memoryIdentity()
    deliver(record(remote, 1, volumesNamed('v1', 'v2')))
    deliver(record(twin, 1, volumesNamed('v2'), { name: 'remote-node' }))
    deliver(record(memoryIdentity(), 1, volumesNamed('v1', 'imposter-volume'), { name: 'self-node' }))

    expect(service.find(remote.peerId, 'v2')?.owner).toBe(remote.peerId)
    expect(service.find(remote.peerId, 'v2-name')?.id).toBe('v2')
    // Two publishers claim remote-node, so the name alone finds nothing.
    expect(service.find('remote-node', 'v2')).toBeUndefined()
    // A publisher that claims this node's name does not shadow this node.
    expect(service.find('self-node', 'v1')?.owner).toBe(self.peerId)
    expect(service.find('self-node', 'imposter-volume')).toBeUndefined()
    expect(service.find(remote.peerId, 'missing')).toBeUndefined()
    await service.stop()
  })

  it('change listeners see changes only', async () => {
    clock = start
    const service = newService()
    await service.start()
    let changes = 0
    const unsubscribe = service.onChange(() => changes++)

    deliver(record(remote, 1, volumesNamed('v1')))
    expect(changes).toBe(1)
    deliver(record(remote, 2, volumesNamed('v1')))
    expect(changes).toBe(1)
    deliver(record(remote, 3, volumesNamed('v1', 'v2')))
    expect(changes).toBe(2)
    service.setVolumes(volumesNamed('mine'))
    expect(changes).toBe(3)

    unsubscribe()
    deliver(record(remote, 4, []))
    expect(changes).toBe(3)
    await service.stop()
  })

  it('publishes increasing seq and a withdrawal', async () => {
    clock = start
    published.length = 0
    const service = newService()
    service.setVolumes(volumesNamed('v1'))
    await service.start()
    service.setVolumes(volumesNamed('v1', 'v2'))
    service.setVolumes(volumesNamed('v2'))
    await service.stop()

    // The clock does not advance, yet each record must supersede the one before.
    const records = published.map((wire) => verifyAdvert(wire, clock))
    expect(records.map((entry) => entry.volumes.map((volume) => volume.id))).toEqual([['v1'], ['v1', 'v2'], ['v2'], []])
    for (let i = 1; i < records.length; i++) expect(records[i].seq).toBeGreaterThan(records[i - 1].seq)
    expect(records.every((entry) => entry.peer === self.peerId && entry.name === 'self-node')).toBe(true)
  })

  it('setVolumes rejects an invalid list', () => {
    const service = newService()
    const invalidMode = [{ ...volumesNamed('v1')[0], accessMode: 'rwx' }] as unknown as SharedVolume[]
    expect(() => service.setVolumes(invalidMode)).toThrow(InvalidSharedVolumes)
    expect(() => service.setVolumes([...volumesNamed('v1'), ...volumesNamed('v1')])).toThrow(InvalidSharedVolumes)
    const large = Array.from({ length: 400 }, (_, i) => ({ ...volumesNamed(`v${i}`)[0], name: 'n'.repeat(200) }))
    expect(() => service.setVolumes(large)).toThrow(/bytes, more than the limit/)
    expect(service.volumes()).toEqual([])
  })
})
