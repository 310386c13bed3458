// The `mesh:` section: every key with good values, defaults and bad values, with peer ids made
// from real keys. Each error must name the field and the value and give the fix.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadConfigFile } from '../../src/config/index.js'
import { expectConfigError, oneVolume, parse } from './helpers.js'

/** Two local volumes and one seal volume, which `share` may or may not name. */
const volumesYaml = `volumes:
  - name: data
    type: local
    mount_path: /workspace/data
    access_mode: read-write
  - name: other
    type: local
    mount_path: /workspace/other
    access_mode: read-only
  - name: remote
    type: seal
    mount_path: /workspace/remote
    access_mode: read-write
    config: {node_id: node-b, remote_volume_id: shared}
`

/** Builds a config file with `volumesYaml` and a mesh section made of `lines`, each one key. */
function withMesh(...lines: string[]): string {
  return `${volumesYaml}mesh:\n${lines.map((line) => `  ${line}\n`).join('')}`
}

let ed25519: PeerId
let ed25519Second: PeerId
let secp256k1: PeerId
let rsa: PeerId

beforeAll(async () => {
  ed25519 = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  ed25519Second = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  secp256k1 = peerIdFromPrivateKey(await generateKeyPair('secp256k1'))
  rsa = peerIdFromPrivateKey(await generateKeyPair('RSA', 2048))
})

describe('mesh section', () => {
  it('is null when absent', () => {
    expect(parse(volumesYaml).mesh).toBeNull()
  })

  it('fills every default', () => {
    expect(parse(`${volumesYaml}mesh: {}\n`).mesh).toEqual({
      listen: ['/ip4/127.0.0.1/tcp/4001'],
      bootstrap: [],
      trustedPeers: [],
      peerLabels: {},
      share: [],
      policyDir: null,
      maxClockSkewMs: 30_000,
      requestTimeoutMs: 30_000,
      advertRefreshMs: 10_000,
      advertTtlMs: 30_000
    })
  })

  it('joins with defaults when empty', () => {
    const mesh = parse(`${volumesYaml}mesh:\n`).mesh
    expect(mesh).not.toBeNull()
    expect(mesh?.listen).toEqual(['/ip4/127.0.0.1/tcp/4001'])
  })

  it('reads a full section', () => {
    const config = parse(
      withMesh(
        'listen: [/ip4/0.0.0.0/tcp/4001, /ip6/::/tcp/4001]',
        `bootstrap: [/dns4/node-b.internal/tcp/4001/p2p/${ed25519}]`,
        `trusted_peers: [${ed25519}, ${ed25519Second}]`,
        `peers: {${ed25519}: {labels: [trusted, zone:eu-1]}}`,
        'share: [data, {volume: other, labels: [public]}]',
        'policy_dir: policies',
        'max_clock_skew: 5s',
        'request_timeout: 2m',
        'advert_refresh: 500ms',
        'advert_ttl: 3s'
      )
    )
    expect(config.mesh).toEqual({
      listen: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'],
      bootstrap: [`/dns4/node-b.internal/tcp/4001/p2p/${ed25519}`],
      trustedPeers: [ed25519.toString(), ed25519Second.toString()],
      peerLabels: { [ed25519.toString()]: ['trusted', 'zone:eu-1'] },
      share: [
        { volume: 'data', labels: [] },
        { volume: 'other', labels: ['public'] }
      ],
      policyDir: '/etc/aegis/policies',
      maxClockSkewMs: 5000,
      requestTimeoutMs: 120_000,
      advertRefreshMs: 500,
      advertTtlMs: 3000
    })
  })

  it('rejects a list', () => {
    expectConfigError(`${volumesYaml}mesh: [listen]\n`, 'mesh', 'expected a map', 'got a list')
  })

  it('rejects unknown key with hint', () => {
    expectConfigError(withMesh('trusted_peer: any'), 'mesh.trusted_peer', '"trusted_peer"', 'did you mean "trusted_peers"?', 'policy_dir')
  })
})

describe('mesh.listen', () => {
  it.each(['/ip4/127.0.0.1/tcp/4001', '/ip6/::1/tcp/4001', '/dns4/node-a.internal/tcp/4001', '/dns6/node-a.internal/tcp/4001', '/dns/node-a.internal/tcp/0'])(
    'accepts %s',
    (address) => {
      expect(parse(withMesh(`listen: [${JSON.stringify(address)}]`)).mesh?.listen).toEqual([address])
    }
  )

  it('keeps several addresses in order', () => {
    const listen = parse(withMesh('listen: [/ip4/127.0.0.1/tcp/4001, /ip6/::1/tcp/4002]')).mesh?.listen
    expect(listen).toEqual(['/ip4/127.0.0.1/tcp/4001', '/ip6/::1/tcp/4002'])
  })

  it('rejects an empty list', () => {
    expectConfigError(withMesh('listen: []'), 'mesh.listen', 'the list is empty', 'give at least one address such as /ip4/127.0.0.1/tcp/4001')
  })

  it('rejects a single string', () => {
    expectConfigError(withMesh('listen: /ip4/127.0.0.1/tcp/4001'), 'mesh.listen', 'expected a list', '"/ip4/127.0.0.1/tcp/4001"', '"- " line')
  })

  it.each([
    ['UDP', '/ip4/127.0.0.1/udp/4001', 'must be an address and TCP port'],
    ['WebSocket', '/ip4/127.0.0.1/tcp/4001/ws', 'must be an address and TCP port'],
    ['peer id suffix', '/ip4/127.0.0.1/tcp/4001/p2p/PEER', 'must be an address and TCP port'],
    ['no port', '/ip4/127.0.0.1', 'must be an address and TCP port'],
    ['port first', '/tcp/4001', 'must be an address and TCP port'],
    ['no leading slash', 'ip4/127.0.0.1/tcp/4001', 'is not a multiaddr'],
    ['port over 65535', '/ip4/127.0.0.1/tcp/70000', 'is not a multiaddr'],
    ['bad IPv4', '/ip4/999.0.0.1/tcp/4001', 'is not a multiaddr'],
    ['host:port form', '127.0.0.1:4001', 'is not a multiaddr']
  ])('rejects %s', (_, template, problem) => {
    const address = template.replace('PEER', ed25519.toString())
    // Messages cut quoted values after 80 characters, so only the start of a long address shows.
    const quotedStart = JSON.stringify(address).slice(0, 60)
    expectConfigError(withMesh(`listen: [${JSON.stringify(address)}]`), 'mesh.listen[0]', quotedStart, problem, 'like /ip4/127.0.0.1/tcp/4001')
  })

  it('names the bad item index', () => {
    expectConfigError(withMesh('listen: [/ip4/127.0.0.1/tcp/4001, /ip4/127.0.0.1/udp/4002]'), 'mesh.listen[1]', '"/ip4/127.0.0.1/udp/4002"')
  })
})

describe('mesh.bootstrap', () => {
  it('defaults to no peers', () => {
    expect(parse(withMesh('listen: [/ip4/127.0.0.1/tcp/4001]')).mesh?.bootstrap).toEqual([])
  })

  it('accepts addresses with peer ids', () => {
    const addresses = [`/ip4/10.0.0.2/tcp/4001/p2p/${ed25519}`, `/dns4/node-c.internal/tcp/4001/p2p/${ed25519Second}`]
    expect(parse(withMesh(`bootstrap: [${addresses.join(', ')}]`)).mesh?.bootstrap).toEqual(addresses)
  })

  it('rejects an address without peer id', () => {
    expectConfigError(withMesh('bootstrap: [/ip4/10.0.0.2/tcp/4001]'), 'mesh.bootstrap[0]', '"/ip4/10.0.0.2/tcp/4001"', 'followed by /p2p/<peer id>', 'like /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW')
  })

  it('rejects a UDP address', () => {
    expectConfigError(withMesh(`bootstrap: [/ip4/10.0.0.2/udp/4001/p2p/${ed25519}]`), 'mesh.bootstrap[0]', '/udp/4001', 'TCP port followed by /p2p/<peer id>')
  })

  it('rejects a secp256k1 peer', () => {
    const address = `/ip4/10.0.0.2/tcp/4001/p2p/${secp256k1}`
    expectConfigError(withMesh(`bootstrap: [${address}]`), 'mesh.bootstrap[0]', `"${secp256k1}"`, 'is a peer id of type secp256k1', 'Ed25519 ids (12D3KooW...)')
  })

  it('rejects an RSA peer', () => {
    const address = `/ip4/10.0.0.2/tcp/4001/p2p/${rsa}`
    expectConfigError(withMesh(`bootstrap: [${address}]`), 'mesh.bootstrap[0]', `"${rsa}"`, 'peer id of type RSA', 'Ed25519 ids (12D3KooW...)')
  })

  it('rejects a garbage peer id', () => {
    expectConfigError(withMesh('bootstrap: [/ip4/10.0.0.2/tcp/4001/p2p/not-a-peer]'), 'mesh.bootstrap[0]', '"not-a-peer" is not a libp2p peer id', 'run "aegis-node id" on that node')
  })
})

describe('mesh.trusted_peers', () => {
  it('defaults to bootstrap peers', () => {
    const text = withMesh(`bootstrap: [/ip4/10.0.0.2/tcp/4001/p2p/${ed25519}, /ip6/fd00::3/tcp/4001/p2p/${ed25519Second}]`)
    expect(parse(text).mesh?.trustedPeers).toEqual([ed25519.toString(), ed25519Second.toString()])
  })

  it('accepts any', () => {
    expect(parse(withMesh('trusted_peers: any')).mesh?.trustedPeers).toBe('any')
  })

  it('replaces the bootstrap default', () => {
    const text = withMesh(`bootstrap: [/ip4/10.0.0.2/tcp/4001/p2p/${ed25519}]`, `trusted_peers: [${ed25519Second}]`)
    expect(parse(text).mesh?.trustedPeers).toEqual([ed25519Second.toString()])
  })

  it('rejects ANY in capitals', () => {
    expectConfigError(withMesh('trusted_peers: ANY'), 'mesh.trusted_peers', '"ANY"', 'neither "any" nor a list', 'write "any" or a list of peer ids')
  })

  it('rejects a single peer id', () => {
    expectConfigError(withMesh(`trusted_peers: ${ed25519}`), 'mesh.trusted_peers', `"${ed25519}"`, 'write "any" or a list of peer ids')
  })

  it('rejects a number', () => {
    expectConfigError(withMesh('trusted_peers: 5'), 'mesh.trusted_peers', 'expected a list', 'the number 5')
  })

  it('rejects a garbage id', () => {
    expectConfigError(withMesh(`trusted_peers: [${ed25519}, not-a-peer]`), 'mesh.trusted_peers[1]', '"not-a-peer"', 'is not a libp2p peer id', 'run "aegis-node id" on that node')
  })

  it('rejects a truncated id', () => {
    const truncated = ed25519.toString().slice(0, 20)
    expectConfigError(withMesh(`trusted_peers: [${truncated}]`), 'mesh.trusted_peers[0]', `"${truncated}"`, 'is not a libp2p peer id')
  })

  it('rejects a secp256k1 id', () => {
    expectConfigError(withMesh(`trusted_peers: [${secp256k1}]`), 'mesh.trusted_peers[0]', `"${secp256k1}"`, 'is a peer id of type secp256k1', 'Ed25519 ids (12D3KooW...)')
  })

  it('rejects an RSA id', () => {
    expectConfigError(withMesh(`trusted_peers: [${rsa}]`), 'mesh.trusted_peers[0]', `"${rsa}"`, 'peer id of type RSA', 'Ed25519 ids (12D3KooW...)')
  })
})

// libp2p compares peers by their base58 form (12D3KooW...). An Ed25519 id written as a CIDv1
// (bafz...) names the same peer, so the config must store the base58 form or reject the CID.
describe('peer id written as CID', () => {
  it('trusted_peers stores base58 form', () => {
    const mesh = parse(withMesh(`trusted_peers: [${ed25519.toCID().toString()}]`)).mesh
    expect(mesh?.trustedPeers).toEqual([ed25519.toString()])
  })

  it('bootstrap stores base58 form', () => {
    const mesh = parse(withMesh(`bootstrap: [/ip4/10.0.0.2/tcp/4001/p2p/${ed25519.toCID().toString()}]`)).mesh
    expect(mesh?.trustedPeers).toEqual([ed25519.toString()])
    expect(mesh?.bootstrap).toEqual([`/ip4/10.0.0.2/tcp/4001/p2p/${ed25519}`])
  })

  it('peers keys use base58 form', () => {
    const mesh = parse(withMesh(`peers: {${ed25519.toCID().toString()}: {labels: [trusted]}}`)).mesh
    expect(mesh?.peerLabels).toEqual({ [ed25519.toString()]: ['trusted'] })
  })
})

describe('mesh.peers', () => {
  const peerField = (peer: PeerId) => `mesh.peers[${JSON.stringify(peer.toString())}]`

  it('reads labels by peer id', () => {
    const text = withMesh(`peers:`, `  ${ed25519}: {labels: [trusted, zone:eu-1, gpu.a100, team_ml]}`, `  ${ed25519Second}: {labels: []}`)
    expect(parse(text).mesh?.peerLabels).toEqual({
      [ed25519.toString()]: ['trusted', 'zone:eu-1', 'gpu.a100', 'team_ml'],
      [ed25519Second.toString()]: []
    })
  })

  it('gives no labels when empty', () => {
    expect(parse(withMesh(`peers: {${ed25519}: }`)).mesh?.peerLabels).toEqual({ [ed25519.toString()]: [] })
  })

  it('accepts a 63-character label', () => {
    const label = 'a'.repeat(63)
    expect(parse(withMesh(`peers: {${ed25519}: {labels: [${label}]}}`)).mesh?.peerLabels[ed25519.toString()]).toEqual([label])
  })

  it.each(['bad label', '-leading-dash', 'a'.repeat(64), 'slash/label', ''])('rejects label %j', (label) => {
    const text = withMesh(`peers: {${ed25519}: {labels: [${JSON.stringify(label)}]}}`)
    const fragment = label === '' ? 'empty string' : `${JSON.stringify(label)} is not a label`
    expectConfigError(text, `${peerField(ed25519)}.labels[0]`, fragment)
  })

  it('names the bad label and the fix', () => {
    expectConfigError(withMesh(`peers: {${ed25519}: {labels: ["bad label"]}}`), `${peerField(ed25519)}.labels[0]`, '"bad label" is not a label', 'use 1 to 63 letters, digits')
  })

  it('rejects a garbage peer id', () => {
    expectConfigError(withMesh('peers: {not-a-peer: {labels: [trusted]}}'), 'mesh.peers.not-a-peer', '"not-a-peer" is not a libp2p peer id', 'aegis-node id')
  })

  it('rejects a secp256k1 peer id', () => {
    expectConfigError(withMesh(`peers: {${secp256k1}: {labels: [trusted]}}`), peerField(secp256k1), 'is a peer id of type secp256k1')
  })

  it('rejects an unknown key', () => {
    expectConfigError(withMesh(`peers: {${ed25519}: {label: [trusted]}}`), `${peerField(ed25519)}.label`, 'did you mean "labels"?')
  })

  it('rejects labels as a string', () => {
    expectConfigError(withMesh(`peers: {${ed25519}: {labels: trusted}}`), `${peerField(ed25519)}.labels`, 'expected a list', '"trusted"')
  })

  it('rejects a list', () => {
    expectConfigError(withMesh(`peers: [${ed25519}]`), 'mesh.peers', 'expected a map', 'got a list')
  })
})

describe('mesh.share', () => {
  it('defaults to nothing shared', () => {
    expect(parse(withMesh('listen: [/ip4/127.0.0.1/tcp/4001]')).mesh?.share).toEqual([])
  })

  it('accepts volume names', () => {
    expect(parse(withMesh('share: [data, other]')).mesh?.share).toEqual([
      { volume: 'data', labels: [] },
      { volume: 'other', labels: [] }
    ])
  })

  it('accepts maps with labels', () => {
    expect(parse(withMesh('share: [{volume: data, labels: [public, tier:gold]}]')).mesh?.share).toEqual([{ volume: 'data', labels: ['public', 'tier:gold'] }])
  })

  it('rejects an unknown volume', () => {
    expectConfigError(withMesh('share: [data, nope]'), 'mesh.share[1]', '"nope" is not a volume of this node', 'the volumes are data, other, remote')
  })

  it('rejects an unknown volume map', () => {
    expectConfigError(withMesh('share: [{volume: nope}]'), 'mesh.share[0].volume', '"nope" is not a volume of this node', 'data, other, remote')
  })

  it('rejects a volume listed twice', () => {
    expectConfigError(withMesh('share: [data, other, {volume: data, labels: [public]}]'), 'mesh.share', 'volume "data" is listed twice', 'list each volume once')
  })

  it('rejects a seal volume', () => {
    expectConfigError(withMesh('share: [data, remote]'), 'mesh.share', 'remote', 'is a seal volume of another node', 'share it from the node that owns it')
  })

  it('rejects a map without volume', () => {
    expectConfigError(withMesh('share: [{labels: [public]}]'), 'mesh.share[0].volume', 'empty value')
  })

  it('rejects an unknown entry key', () => {
    expectConfigError(withMesh('share: [{volume: data, lables: [public]}]'), 'mesh.share[0].lables', 'did you mean "labels"?')
  })

  it('rejects a bad share label', () => {
    expectConfigError(withMesh('share: [{volume: data, labels: ["two words"]}]'), 'mesh.share[0].labels[0]', '"two words" is not a label')
  })

  it('rejects a single name', () => {
    expectConfigError(withMesh('share: data'), 'mesh.share', 'expected a list', '"data"')
  })
})

describe('mesh.policy_dir', () => {
  let directory = ''

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'aegis-mesh-config-'))
  })

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true })
  })

  it('defaults to null', () => {
    expect(parse(withMesh('share: [data]')).mesh?.policyDir).toBeNull()
  })

  it('resolves against the config directory', () => {
    expect(parse(withMesh('policy_dir: ./mesh/policies')).mesh?.policyDir).toBe('/etc/aegis/mesh/policies')
  })

  it('keeps an absolute path', () => {
    expect(parse(withMesh('policy_dir: /srv/aegis/policies')).mesh?.policyDir).toBe('/srv/aegis/policies')
  })

  it('resolves against the file directory', async () => {
    const file = join(directory, 'node.yaml')
    await writeFile(file, withMesh('policy_dir: policies'))
    const config = await loadConfigFile(file)
    expect(config.mesh?.policyDir).toBe(join(directory, 'policies'))
  })

  it('rejects a number', () => {
    expectConfigError(withMesh('policy_dir: 7'), 'mesh.policy_dir', 'expected a string', 'the number 7')
  })

  // node.data_dir and audit.path reject "~" because neither YAML nor Node expands it. A policy_dir
  // of "~/policies" would otherwise name <config dir>/~/policies.
  it('rejects a path starting with ~', () => {
    expectConfigError(withMesh('policy_dir: ~/policies'), 'mesh.policy_dir', '"~/policies"', 'not expanded')
  })
})

describe('mesh durations', () => {
  it.each([
    ['max_clock_skew', '1000ms', 'maxClockSkewMs', 1000],
    ['max_clock_skew', '45s', 'maxClockSkewMs', 45_000],
    ['max_clock_skew', '10m', 'maxClockSkewMs', 600_000],
    ['request_timeout', '100ms', 'requestTimeoutMs', 100],
    ['request_timeout', '2m', 'requestTimeoutMs', 120_000],
    ['request_timeout', '600s', 'requestTimeoutMs', 600_000],
    ['advert_ttl', '1s', 'advertTtlMs', 1000],
    ['advert_ttl', '60m', 'advertTtlMs', 3_600_000],
    ['advert_refresh', '100ms', 'advertRefreshMs', 100],
    ['advert_refresh', '29s', 'advertRefreshMs', 29_000]
  ] as const)('%s accepts %s', (key, value, property, expectedMs) => {
    expect(parse(withMesh(`${key}: ${value}`)).mesh?.[property]).toBe(expectedMs)
  })

  it.each([
    ['max_clock_skew', '999ms', '1000ms to 600s'],
    ['max_clock_skew', '601s', '1000ms to 600s'],
    ['max_clock_skew', '0s', '1000ms to 600s'],
    ['request_timeout', '99ms', '100ms to 600s'],
    ['request_timeout', '11m', '100ms to 600s'],
    ['advert_ttl', '999ms', '1000ms to 3600s'],
    ['advert_ttl', '61m', '1000ms to 3600s'],
    ['advert_refresh', '99ms', '100ms to 3600s']
  ])('%s rejects %s as out of range', (key, value, range) => {
    expectConfigError(withMesh(`${key}: ${value}`), `mesh.${key}`, `"${value}" is out of range`, `use a duration from ${range}`)
  })

  it.each(['30', '1.5s', '1h', '30S', '-1s', '30 s', 'soon', '1e3ms'])('rejects %s as no duration', (value) => {
    expectConfigError(withMesh(`request_timeout: "${value}"`), 'mesh.request_timeout', `"${value}" is not a duration`, 'such as 500ms, 30s or 2m')
  })

  it('rejects a bare number', () => {
    expectConfigError(withMesh('max_clock_skew: 30'), 'mesh.max_clock_skew', '30 is not a duration', 'such as 500ms, 30s or 2m')
  })

  it('rejects a list', () => {
    expectConfigError(withMesh('advert_ttl: [30s]'), 'mesh.advert_ttl', 'expected a string', 'got a list')
  })

  it('refresh must be shorter than ttl', () => {
    expectConfigError(withMesh('advert_refresh: 30s', 'advert_ttl: 30s'), 'mesh.advert_refresh', '30000ms is not shorter than mesh.advert_ttl (30000ms)')
  })

  it('refresh checked against default ttl', () => {
    expectConfigError(withMesh('advert_refresh: 40s'), 'mesh.advert_refresh', '40000ms is not shorter than mesh.advert_ttl (30000ms)')
  })

  it.each([
    ['1s', 333],
    ['3s', 1000],
    ['29s', 9666],
    ['30s', 10_000],
    ['2m', 10_000]
  ])('refresh default for ttl %s', (ttl, refreshMs) => {
    const mesh = parse(withMesh(`advert_ttl: ${ttl}`)).mesh
    expect(mesh?.advertRefreshMs).toBe(refreshMs)
  })
})

describe('seal volume size_limit', () => {
  const seal = (sizeLimit: string | null) => oneVolume({ type: 'seal', size_limit: sizeLimit, config: '{node_id: node-b, remote_volume_id: shared}' })

  it('has no limit of its own', () => {
    expect(parse(seal(null)).volumes[0].sizeLimitBytes).toBeNull()
  })

  it('rejects size_limit', () => {
    expectConfigError(seal('1Gi'), 'volumes[0].size_limit', 'seal volume', 'its owner node sets', 'remove size_limit here and set it on the owner')
  })

  it('keeps size_limit on local volumes', () => {
    expect(parse(oneVolume({ size_limit: '1Gi' })).volumes[0].sizeLimitBytes).toBe(1024 ** 3)
  })
})
