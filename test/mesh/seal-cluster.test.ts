// Three aegis-node processes on loopback. Node B owns volume "shared"; nodes A and C mount it as
// a seal volume and serve it on their own NFS endpoints. Every check goes through a real NFS
// client on A or C, a real libp2p connection and B's own AegisFSAL, and reads B's disk and both
// audit trails.

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, eventually, freePort, peerIdFor, sealVolumeYaml, startNodeProcess, type NodeProcess } from '../helpers/mesh-cluster.js'
import { nfsCat, nfsCp, nfsLs, runNfsScript } from '../helpers/nfs-client.js'
import { Nfs3Client } from '../helpers/nfs3.js'
import { makeTempDir } from '../helpers/node.js'

const run = promisify(execFile)
const testDir = path.dirname(fileURLToPath(import.meta.url))
const REQUEST_TIMEOUT_S = 3

interface Cluster {
  a: NodeProcess
  b: NodeProcess
  c: NodeProcess
  dirs: { a: string; b: string; c: string; d: string }
  peers: { a: string; b: string; c: string; d: string }
  bAddress: string
  policyDir: string
}

let cluster: Cluster

function ownerYaml(peers: Cluster['peers'], meshPort: number, policyDir: string): string {
  return `volumes:
  - name: shared
    type: local
    mount_path: /workspace/shared
    access_mode: read-write
    size_limit: 256Mi
  - name: private
    type: local
    mount_path: /workspace/private
    access_mode: read-write
  - name: tiny
    type: local
    mount_path: /workspace/tiny
    access_mode: read-write
    size_limit: 1Mi
  - name: archive
    type: local
    mount_path: /workspace/archive
    access_mode: read-only
mesh:
  listen: [/ip4/127.0.0.1/tcp/${meshPort}]
  trusted_peers: [${peers.a}, ${peers.c}, ${peers.d}]
  peers:
    ${peers.a}:
      labels: [pipeline]
  share:
    - volume: shared
      labels: [team]
    - tiny
    - archive
  policy_dir: ${policyDir}
`
}

function callerYaml(ownerPeer: string, ownerAddress: string, meshPort: number): string {
  const volumes = [
    sealVolumeYaml('remote', ownerPeer, 'shared'),
    sealVolumeYaml('remote-tiny', ownerPeer, 'tiny'),
    sealVolumeYaml('remote-archive', ownerPeer, 'archive'),
    sealVolumeYaml('by-name', 'node-b', 'shared', 'read-only')
  ]
  return `volumes:\n${volumes.join('')}mesh:
  listen: [/ip4/127.0.0.1/tcp/${meshPort}]
  bootstrap: [${ownerAddress}]
  request_timeout: ${REQUEST_TIMEOUT_S}s
`
}

const POLICIES = (peers: Cluster['peers']): string => `@id("pipeline-all")
permit (principal, action, resource) when { principal.labels.contains("pipeline") };

@id("c-reads")
permit (principal == Aegis::Node::"${peers.c}", action in Aegis::Action::"Read", resource);

@id("d-looks")
permit (principal == Aegis::Node::"${peers.d}", action in [Aegis::Action::"getattr", Aegis::Action::"lookup"], resource);

@id("no-secrets")
forbid (principal, action, resource) when { context.path like "/secret*" };
`

async function startOwner(dirs: Cluster['dirs'], peers: Cluster['peers'], meshPort: number, policyDir: string): Promise<NodeProcess> {
  return startNodeProcess({ name: 'node-b', dataDir: dirs.b, meshPort, yaml: ownerYaml(peers, meshPort, policyDir) })
}

beforeAll(async () => {
  const dirs = { a: makeTempDir('aegis-mesh-a-'), b: makeTempDir('aegis-mesh-b-'), c: makeTempDir('aegis-mesh-c-'), d: makeTempDir('aegis-mesh-d-') }
  const peers = { a: await peerIdFor(dirs.a), b: await peerIdFor(dirs.b), c: await peerIdFor(dirs.c), d: await peerIdFor(dirs.d) }
  const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()]
  const policyDir = path.join(dirs.b, 'policies')
  fs.mkdirSync(policyDir)
  fs.writeFileSync(path.join(policyDir, 'access.cedar'), POLICIES(peers))

  const b = await startOwner(dirs, peers, portB, policyDir)
  const bAddress = `/ip4/127.0.0.1/tcp/${portB}/p2p/${peers.b}`
  const a = await startNodeProcess({ name: 'node-a', dataDir: dirs.a, meshPort: portA, yaml: callerYaml(peers.b, bAddress, portA) })
  const c = await startNodeProcess({ name: 'node-c', dataDir: dirs.c, meshPort: portC, yaml: callerYaml(peers.b, bAddress, portC) })
  cluster = { a, b, c, dirs, peers, bAddress, policyDir }
}, 60_000)

afterAll(async () => {
  if (cluster === undefined) return
  await Promise.all([cluster.a.stop(), cluster.b.stop(), cluster.c.stop()])
})

const ownerPath = (name: string): string => path.join(cluster.dirs.b, 'volumes', 'shared', name)

describe('a seal volume served by node A lives on node B', () => {
  it('copies, lists, renames and deletes', async () => {
    const local = path.join(makeTempDir(), 'upload.bin')
    const content = randomBytes(8 * 1024 * 1024 + 123)
    fs.writeFileSync(local, content)

    const upload = await nfsCp(local, cluster.a.url('remote', '/upload.bin'))
    expect(upload.code, upload.stderr).toBe(0)
    expect(fs.readFileSync(ownerPath('upload.bin')).equals(content)).toBe(true)

    const download = await nfsCat(cluster.a.url('remote', '/upload.bin'))
    expect(download.code, download.stderr).toBe(0)
    expect(download.stdout.equals(content)).toBe(true)

    const listing = await nfsLs(cluster.a.url('remote'))
    expect(listing.code, listing.stderr).toBe(0)
    expect(listing.stdout.toString()).toContain('upload.bin')

    const results = await runNfsScript(cluster.a.url('remote'), [
      ['mkdir', '/dir', '755'],
      ['rename', '/upload.bin', '/dir/moved.bin'],
      ['stat', '/dir/moved.bin'],
      ['ls', '/dir'],
      ['unlink', '/dir/moved.bin'],
      ['rmdir', '/dir']
    ])
    expect(results.map((result) => result.ok), JSON.stringify(results)).toEqual([true, true, true, true, true, true])
    expect(results[2].size).toBe(content.length)
    expect(fs.existsSync(ownerPath('upload.bin'))).toBe(false)
    expect(fs.existsSync(ownerPath('dir'))).toBe(false)
  })

  it('multiplexes concurrent reads on one stream', async () => {
    const content = randomBytes(64 * 4096)
    fs.writeFileSync(ownerPath('many.bin'), content)
    const streamsFromA = (): number => cluster.b.log.filter((line) => line.includes('"SEAL stream opened"') && line.includes(cluster.peers.a)).length
    const client = await Nfs3Client.connect(cluster.a.nfsPort)
    try {
      const root = await client.mount('/remote')
      const file = await client.lookupHandle(root, 'many.bin')
      const before = streamsFromA()
      // 64 READs sent at once on one NFS connection become 64 SEAL requests from A to B.
      const reads = await Promise.all(Array.from({ length: 64 }, (_, i) => client.read(file, i * 4096, 4096)))
      expect(reads.map((read) => read.status).filter((status) => status !== 'OK')).toEqual([])
      expect(Buffer.concat(reads.map((read) => read.data ?? Buffer.alloc(0))).equals(content)).toBe(true)
      // At most one new stream: the one A keeps to B, if it was not open yet.
      expect(streamsFromA() - before).toBeLessThanOrEqual(1)
      expect(streamsFromA()).toBeGreaterThanOrEqual(1)
    } finally {
      client.close()
    }
    const ownerEvents = await eventually(
      () => cluster.b.auditEvents().filter((event) => event.procedure === 'seal:read_at' && event.path === '/many.bin'),
      (events) => events.length >= 64
    )
    expect(ownerEvents.length).toBe(64)
  })

  it('enforces owner quota and read-only', async () => {
    const local = path.join(makeTempDir(), 'two-mib.bin')
    fs.writeFileSync(local, randomBytes(2 * 1024 * 1024))
    const overQuota = await runNfsScript(cluster.a.url('remote-tiny'), [['writefile', '/two-mib.bin', local]])
    // libnfs reports the failed write without its NFS status, so both audit trails show it.
    expect(overQuota[0].ok).toBe(false)
    const ownerEvents = await eventually(
      () => cluster.b.auditEvents(),
      (events) => events.some((event) => event.volume === 'tiny' && event.status === 'DQUOT')
    )
    expect(ownerEvents.find((event) => event.volume === 'tiny' && event.status === 'DQUOT')).toMatchObject({ procedure: 'seal:write_at', path: '/two-mib.bin' })
    const callerEvents = await eventually(
      () => cluster.a.auditEvents(),
      (events) => events.some((event) => event.volume === 'remote-tiny' && event.status === 'DQUOT')
    )
    expect(callerEvents.find((event) => event.volume === 'remote-tiny' && event.status === 'DQUOT')).toMatchObject({ procedure: 'WRITE', path: '/two-mib.bin' })
    const onOwner = path.join(cluster.dirs.b, 'volumes', 'tiny', 'two-mib.bin')
    expect(fs.existsSync(onOwner) ? fs.statSync(onOwner).size : 0).toBeLessThanOrEqual(1024 * 1024)

    const readOnly = await runNfsScript(cluster.a.url('remote-archive'), [['mkdir', '/new', '755']])
    expect(readOnly[0]).toMatchObject({ ok: false, errno: 30 })
    expect(fs.existsSync(path.join(cluster.dirs.b, 'volumes', 'archive', 'new'))).toBe(false)
  })

  it('returns NOENT, NOTEMPTY and EXIST', async () => {
    const results = await runNfsScript(cluster.a.url('remote'), [
      ['stat', '/missing'],
      ['mkdir', '/full', '755'],
      ['create', '/full/file', '644'],
      ['rmdir', '/full'],
      ['create_excl', '/full/file', '644'],
      ['unlink', '/full/file'],
      ['rmdir', '/full']
    ])
    expect(results[0]).toMatchObject({ ok: false, errno: 2 })
    expect(results[3]).toMatchObject({ ok: false, errno: 39 })
    expect(results[4]).toMatchObject({ ok: false, errno: 17 })
    expect([results[1].ok, results[2].ok, results[5].ok, results[6].ok]).toEqual([true, true, true, true])
  })
})

describe('the mesh view', () => {
  it('lists peers, volumes and owners by name', async () => {
    const configOf = (node: NodeProcess): string => path.join(node.dataDir, 'node.yaml')
    const volumes = await run(process.execPath, [CLI, 'mesh', 'volumes', '--config', configOf(cluster.a)])
    expect(volumes.stdout).toMatch(new RegExp(`shared\\s+node-b\\s+${cluster.peers.b}\\s+read-write\\s+persistent\\s+256Mi`))
    expect(volumes.stdout).not.toContain('private')

    const peers = await run(process.execPath, [CLI, 'mesh', 'peers', '--config', configOf(cluster.a)])
    expect(peers.stdout).toMatch(new RegExp(`${cluster.peers.b}\\s+node-b\\s+yes\\s+3\\s+/ip4/127.0.0.1/tcp/${cluster.b.meshPort}\\s+/ip4/127.0.0.1/tcp/`))
    // B lists A's listen address from identify, beside the address A's connection came from.
    const ownerPeers = await run(process.execPath, [CLI, 'mesh', 'peers', '--config', configOf(cluster.b)])
    expect(ownerPeers.stdout).toMatch(new RegExp(`${cluster.peers.a}\\s+node-a\\s+yes\\s+\\d+\\s+/ip4/127.0.0.1/tcp/${cluster.a.meshPort}\\s`))

    fs.writeFileSync(ownerPath('named.txt'), 'found by name\n')
    const byName = await nfsCat(cluster.a.url('by-name', '/named.txt'))
    expect(byName.code, byName.stderr).toBe(0)
    expect(byName.stdout.toString()).toBe('found by name\n')
    const readOnly = await runNfsScript(cluster.a.url('by-name'), [['create', '/not-allowed.txt', '644']])
    expect(readOnly[0]).toMatchObject({ ok: false, errno: 30 })
  })

  it('reports a missing running node', async () => {
    const error = await run(process.execPath, [CLI, 'mesh', 'peers', '--data-dir', makeTempDir(), '--config', path.join(cluster.a.dataDir, 'node.yaml')]).catch((failure: { code: number; stderr: string }) => failure)
    expect(error).toMatchObject({ code: 2 })
    expect((error as { stderr: string }).stderr).toContain('no mesh node is running on data directory')
  })
})

describe('Cedar policies on the owner decide every remote request', () => {
  it('denies unpermitted requests with ACCES', async () => {
    fs.writeFileSync(ownerPath('readable.txt'), 'for everyone\n')
    fs.writeFileSync(ownerPath('secret.txt'), 'not for the mesh\n')

    const cRead = await nfsCat(cluster.c.url('remote', '/readable.txt'))
    expect(cRead.code, cRead.stderr).toBe(0)
    expect(cRead.stdout.toString()).toBe('for everyone\n')

    const cWrite = await runNfsScript(cluster.c.url('remote'), [['create', '/from-c.txt', '644']])
    expect(cWrite[0]).toMatchObject({ ok: false, errno: 13 })
    expect(fs.existsSync(ownerPath('from-c.txt'))).toBe(false)

    const aSecret = await runNfsScript(cluster.a.url('remote'), [['read', '/secret.txt', '0', '16']])
    expect(aSecret[0]).toMatchObject({ ok: false, errno: 13 })
    // A rename is checked for both names: A may move the file, but not to a forbidden name.
    const aRename = await runNfsScript(cluster.a.url('remote'), [['rename', '/readable.txt', '/secret-copy.txt']])
    expect(aRename[0]).toMatchObject({ ok: false, errno: 13 })
    expect(fs.existsSync(ownerPath('readable.txt'))).toBe(true)
    expect(fs.existsSync(ownerPath('secret-copy.txt'))).toBe(false)
    const aLink = await runNfsScript(cluster.a.url('remote'), [['link', '/readable.txt', '/secret-link.txt']])
    expect(aLink[0]).toMatchObject({ ok: false, errno: 13 })

    const ownerEvents = await eventually(
      () => cluster.b.auditEvents(),
      (events) => events.some((event) => event.procedure === 'seal:link' && (event.mesh as { decision?: string } | undefined)?.decision === 'deny')
    )
    const cDenied = ownerEvents.find((event) => event.procedure === 'seal:create' && (event.mesh as { peer: string }).peer === cluster.peers.c)
    expect(cDenied).toMatchObject({ status: 'ACCES', path: '/from-c.txt', mesh: { decision: 'deny', policies: [] } })
    // The forbid covers every action, so the LOOKUP that precedes the read is already refused.
    const secretDenied = ownerEvents.find((event) => event.procedure === 'seal:lookup' && event.path === '/secret.txt')
    expect(secretDenied).toMatchObject({ status: 'ACCES', mesh: { peer: cluster.peers.a, decision: 'deny', policies: ['no-secrets'] } })
    const renameDenied = ownerEvents.find((event) => event.procedure === 'seal:rename' && event.path === '/readable.txt')
    expect(renameDenied).toMatchObject({ status: 'ACCES', target: '/secret-copy.txt', mesh: { peer: cluster.peers.a, decision: 'deny', policies: ['no-secrets'] } })
    const linkDenied = ownerEvents.find((event) => event.procedure === 'seal:link')
    expect(linkDenied).toMatchObject({ status: 'ACCES', path: '/readable.txt', target: '/secret-link.txt', mesh: { decision: 'deny', policies: ['no-secrets'] } })
    const allowed = ownerEvents.find((event) => event.procedure === 'seal:read_at' && event.path === '/readable.txt')
    expect(allowed).toMatchObject({ status: 'OK', mesh: { peer: cluster.peers.c, decision: 'allow', policies: ['c-reads'] } })

    const callerEvents = await eventually(
      () => cluster.c.auditEvents(),
      (events) => events.some((event) => event.procedure === 'CREATE' && event.status === 'ACCES')
    )
    expect(callerEvents.find((event) => event.procedure === 'CREATE' && event.status === 'ACCES')).toMatchObject({ volume: 'remote', path: '/from-c.txt' })
    const aEvents = await eventually(
      () => cluster.a.auditEvents(),
      (events) => events.some((event) => event.procedure === 'LOOKUP' && event.status === 'ACCES')
    )
    expect(aEvents.find((event) => event.procedure === 'LOOKUP' && event.status === 'ACCES')).toMatchObject({ volume: 'remote', path: '/secret.txt' })
  })

  it('reloads policies on SIGHUP', async () => {
    // The stream C keeps to B must survive the reload: a new one would show that it was dropped.
    const warmUp = await runNfsScript(cluster.c.url('remote'), [['stat', '/']])
    expect(warmUp[0].ok, JSON.stringify(warmUp)).toBe(true)
    const streamsFromC = (): number => cluster.b.log.filter((line) => line.includes('"SEAL stream opened"') && line.includes(cluster.peers.c)).length
    const streamsBefore = streamsFromC()
    const policyFile = path.join(cluster.policyDir, 'c-writes.cedar')
    fs.writeFileSync(policyFile, `@id("c-writes")\npermit (principal == Aegis::Node::"${cluster.peers.c}", action in Aegis::Action::"Write", resource);\n`)
    cluster.b.process.kill('SIGHUP')
    await cluster.b.waitForLog((entry) => entry.msg === 'policies loaded' && entry.generation === 2)

    const allowed = await runNfsScript(cluster.c.url('remote'), [['create', '/from-c.txt', '644']])
    expect(allowed[0].ok, JSON.stringify(allowed)).toBe(true)
    expect(fs.existsSync(ownerPath('from-c.txt'))).toBe(true)

    // A set that does not validate is refused; C keeps the rights the current set gives it.
    fs.writeFileSync(path.join(cluster.policyDir, 'broken.cedar'), 'permit (principal, action == Aegis::Action::"no_such_action", resource);\n')
    cluster.b.process.kill('SIGHUP')
    await cluster.b.waitForLog((entry) => String(entry.msg).startsWith('policy reload failed'))
    const still = await runNfsScript(cluster.c.url('remote'), [['unlink', '/from-c.txt']])
    expect(still[0].ok, JSON.stringify(still)).toBe(true)
    expect(streamsFromC(), 'streams from C opened across the reloads').toBe(streamsBefore)
    fs.rmSync(path.join(cluster.policyDir, 'broken.cedar'))
    fs.rmSync(policyFile)
  })
})

describe('the owner checks every envelope before policy', () => {
  it('rejects each crafted envelope', async () => {
    const { stdout } = await run(process.execPath, [path.join(testDir, 'seal-craft.mjs'), cluster.dirs.d, cluster.dirs.a, cluster.bAddress, 'shared'], { timeout: 30_000 })
    const outcomes = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { case: string; ok: boolean; rejected: string | null; code?: string })
        .map((outcome) => [outcome.case, outcome])
    )
    // D may call getattr and lookup only: a valid envelope passes, anything else is denied.
    expect(outcomes.valid).toMatchObject({ ok: true })
    expect(outcomes.first_send).toMatchObject({ ok: true })
    expect(outcomes.denied_operation).toMatchObject({ ok: false, code: 'ACCES', rejected: null })
    // Past the envelope and the policies, the owner's AegisFSAL still checks handles and names.
    expect(outcomes.forged_handle).toMatchObject({ ok: false, code: 'BADHANDLE', rejected: null })
    expect(outcomes.dot_dot_name).toMatchObject({ ok: false, code: 'ACCES', rejected: null })
    expect(outcomes.slash_name).toMatchObject({ ok: false, code: 'ACCES', rejected: null })
    const expected: Record<string, string> = {
      tampered: 'BAD_SIGNATURE',
      wrong_key: 'KEY_MISMATCH',
      bad_signature: 'BAD_SIGNATURE',
      wrong_recipient: 'WRONG_RECIPIENT',
      stale: 'STALE',
      future: 'FROM_FUTURE',
      truncated: 'MALFORMED',
      unknown_operation: 'UNKNOWN_OPERATION',
      unknown_volume: 'UNKNOWN_VOLUME',
      data_mismatch: 'DATA_MISMATCH',
      forwarded: 'SENDER_MISMATCH',
      replayed: 'REPLAYED'
    }
    for (const [name, code] of Object.entries(expected)) {
      expect(outcomes[name], name).toMatchObject({ ok: false, code: 'ACCES', rejected: code })
    }

    const events = await eventually(
      () => cluster.b.auditEvents().filter((event) => (event.mesh as { rejected?: string } | undefined)?.rejected !== undefined && (event.mesh as { peer: string }).peer === cluster.peers.d),
      (found) => found.length >= Object.keys(expected).length
    )
    expect(events.map((event) => (event.mesh as { rejected: string }).rejected).sort()).toEqual(Object.values(expected).sort())
    // Each event names the operation and the volume where the owner could decode them and serves the volume.
    const eventOf = (code: string) => events.find((event) => (event.mesh as { rejected: string }).rejected === code)
    expect(eventOf('STALE')).toMatchObject({ procedure: 'seal:getattr', volume: 'shared', status: 'ACCES' })
    expect(eventOf('REPLAYED')).toMatchObject({ procedure: 'seal:getattr', volume: 'shared' })
    expect(eventOf('DATA_MISMATCH')).toMatchObject({ procedure: 'seal:write_at', volume: 'shared' })
    expect(eventOf('UNKNOWN_OPERATION')).toMatchObject({ procedure: 'seal', volume: 'shared' })
    expect(eventOf('UNKNOWN_VOLUME')).toMatchObject({ procedure: 'seal:getattr', volume: null })
    expect(eventOf('MALFORMED')).toMatchObject({ procedure: 'seal', volume: null })
  })
})

describe('a failing owner', () => {
  it('times out while the owner is frozen', async () => {
    fs.writeFileSync(ownerPath('frozen.txt'), 'still here\n')
    // A frozen process keeps its connections open: only the per-call timeout can end the wait.
    cluster.b.process.kill('SIGSTOP')
    let frozen
    const started = Date.now()
    try {
      frozen = await nfsCat(cluster.a.url('remote', '/frozen.txt'), { timeoutMs: 60_000 })
    } finally {
      cluster.b.process.kill('SIGCONT')
    }
    const elapsedMs = Date.now() - started
    expect(frozen.code).not.toBe(0)
    expect(elapsedMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_S * 1000 - 200)
    expect(elapsedMs).toBeLessThan(REQUEST_TIMEOUT_S * 1000 + 10_000)

    const resumed = await nfsCat(cluster.a.url('remote', '/frozen.txt'))
    expect(resumed.code, `${resumed.stderr}\nnode A log:\n${cluster.a.log.slice(-30).join('\n')}`).toBe(0)
    expect(resumed.stdout.toString()).toBe('still here\n')
  }, 60_000)

  it('recovers after the owner restarts', async () => {
    const big = randomBytes(128 * 1024 * 1024)
    fs.writeFileSync(ownerPath('big.bin'), big)
    const reading = nfsCat(cluster.a.url('remote', '/big.bin'), { timeoutMs: 60_000 })
    // Kill B once A's first reads of the file have reached it.
    await eventually(
      () => cluster.b.auditEvents().some((event) => event.procedure === 'seal:read_at' && event.path === '/big.bin'),
      (seen) => seen,
      20_000
    )
    const killedAt = Date.now()
    await cluster.b.stop('SIGKILL')
    const failed = await reading
    const elapsedMs = Date.now() - killedAt
    expect(failed.code).not.toBe(0)
    expect(failed.stdout.length).toBeLessThan(big.length)
    expect(elapsedMs).toBeLessThan(REQUEST_TIMEOUT_S * 1000 + 10_000)

    cluster.b = await startOwner(cluster.dirs, cluster.peers, cluster.b.meshPort, cluster.policyDir)
    await cluster.a.waitForLog((entry) => entry.msg === 'connected to bootstrap peer' && entry.time !== undefined && (entry.time as number) > killedAt, 30_000)
    const again = await nfsCat(cluster.a.url('remote', '/big.bin'), { timeoutMs: 60_000 })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout.equals(big)).toBe(true)
  }, 120_000)
})
