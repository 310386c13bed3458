// Export access rules: a volume's allowed_clients must hold for MNT and for every NFS call (a
// handle learned elsewhere must not work from another address), and by default only loopback
// clients are allowed. A second client address comes from network namespaces the tests create.

import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type NetnsNode,
  type RawOutcome,
  callRecord,
  diffSnapshots,
  type HostEntry,
  run,
  runRawClient,
  snapshotTree,
  startNodeBound,
  startNodeInNetns
} from '../helpers/attack.js'
import { decode, encode, Nfs3Client, Proc, StableHow } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'
import { MOUNT_PROGRAM, NFS_PROGRAM, RpcClient } from '../helpers/rpc-client.js'
import type { ArgsWriter } from '../helpers/rpc-client.js'

const ACCES = 13

describe('volume allowing only ::1', () => {
  const base = makeTempDir('aegis-exports-')
  const v6Dir = path.join(base, 'v6')
  const loopDir = path.join(base, 'loop')
  const volumesYaml =
    hostPathVolumeYaml('v6only', v6Dir, 'read-write', '    allowed_clients: [::1/128]\n') +
    hostPathVolumeYaml('loop', loopDir, 'read-write', '    allowed_clients: [127.0.0.0/8]\n')
  let ipv4Node: TestNode
  let ipv6Node: TestNode
  let client: Nfs3Client
  /** Handles of the v6only volume, obtained by an allowed client over ::1. */
  let v6Root: Buffer
  let v6File: Buffer
  let loopRoot: Buffer
  let loopFile: Buffer
  let before: Map<string, HostEntry>

  beforeAll(async () => {
    fs.mkdirSync(path.join(v6Dir, 'sub'), { recursive: true })
    fs.writeFileSync(path.join(v6Dir, 'x.txt'), 'only for ::1\n')
    fs.symlinkSync('x.txt', path.join(v6Dir, 'link'))
    fs.mkdirSync(loopDir)
    fs.writeFileSync(path.join(loopDir, 'l.txt'), 'loop\n')
    before = snapshotTree(v6Dir)

    // Two nodes with one handle key export the same directories: one listens on 127.0.0.1, the
    // other on ::1, where the allowed client gets real handles of v6only.
    ipv4Node = await startTestNode({ dataDir: path.join(base, 'data4'), volumesYaml })
    const ipv6DataDir = path.join(base, 'data6')
    fs.mkdirSync(ipv6DataDir, { mode: 0o700 })
    fs.copyFileSync(path.join(ipv4Node.dataDir, 'handle.key'), path.join(ipv6DataDir, 'handle.key'))
    fs.chmodSync(path.join(ipv6DataDir, 'handle.key'), 0o600)
    ipv6Node = await startNodeBound('::1', { dataDir: ipv6DataDir, volumesYaml })

    const allowed = await RpcClient.connect(ipv6Node.port, '::1')
    const mounted = await allowed.call(MOUNT_PROGRAM, 3, 1, (w) => w.string('/v6only'))
    mounted.body.u32()
    v6Root = Buffer.from(mounted.body.opaque(64))
    v6File = decode.lookup((await allowed.call(NFS_PROGRAM, 3, Proc.LOOKUP, encode.lookup(v6Root, 'x.txt'))).body).handle!
    allowed.close()

    client = await Nfs3Client.connect(ipv4Node.port)
    loopRoot = await client.mount('/loop')
    loopFile = await client.lookupHandle(loopRoot, 'l.txt')
  })

  afterAll(async () => {
    client?.close()
    await ipv6Node?.stop()
    await ipv4Node?.stop()
    fs.rmSync(base, { recursive: true, force: true })
  })

  it('MNT from 127.0.0.1 is ACCES', async () => {
    const result = await client.mnt('/v6only')
    expect(result.status).toBe('ACCES')
  })

  it('MNT of a subdirectory is ACCES', async () => {
    const result = await client.mnt('/v6only/sub')
    expect(result.status).toBe('ACCES')
  })

  it('MNT of the allowed volume works', async () => {
    const result = await client.mnt('/loop')
    expect(result.status).toBe('OK')
  })

  it('EXPORT hides the refused volume', async () => {
    const exports = await client.exports()
    expect(exports.map((entry) => entry.dir)).toEqual(['/loop'])
  })

  it('handle works for the allowed client', async () => {
    const allowed = await RpcClient.connect(ipv6Node.port, '::1')
    const result = decode.getattr((await allowed.call(NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(v6File))).body)
    allowed.close()
    expect(result.status).toBe('OK')
  })

  const calls: Array<[string, number, () => ArgsWriter]> = [
    ['GETATTR', Proc.GETATTR, () => encode.getattr(v6Root)],
    ['SETATTR', Proc.SETATTR, () => encode.setattr(v6File, { mode: 0o777 })],
    ['LOOKUP', Proc.LOOKUP, () => encode.lookup(v6Root, 'x.txt')],
    ['ACCESS', Proc.ACCESS, () => encode.access(v6File, 0x3f)],
    ['READLINK', Proc.READLINK, () => encode.readlink(v6Root)],
    ['READ', Proc.READ, () => encode.read(v6File, 0, 4096)],
    ['WRITE', Proc.WRITE, () => encode.write(v6File, 0, Buffer.from('changed'), StableHow.FILE_SYNC)],
    ['CREATE', Proc.CREATE, () => encode.create(v6Root, 'created.txt', { mode: 'unchecked' })],
    ['MKDIR', Proc.MKDIR, () => encode.mkdir(v6Root, 'made')],
    ['SYMLINK', Proc.SYMLINK, () => encode.symlink(v6Root, 'made-link', 'x.txt')],
    ['MKNOD', Proc.MKNOD, () => encode.mknodFifo(v6Root, 'made-fifo')],
    ['REMOVE', Proc.REMOVE, () => encode.remove(v6Root, 'x.txt')],
    ['RMDIR', Proc.RMDIR, () => encode.remove(v6Root, 'sub')],
    ['RENAME', Proc.RENAME, () => encode.rename(v6Root, 'x.txt', v6Root, 'renamed.txt')],
    ['LINK', Proc.LINK, () => encode.link(v6File, v6Root, 'hard.txt')],
    ['READDIR', Proc.READDIR, () => encode.readdir(v6Root, 0n, Buffer.alloc(8), 8192)],
    ['READDIRPLUS', Proc.READDIRPLUS, () => encode.readdirplus(v6Root, 0n, Buffer.alloc(8), 8192, 32768)],
    ['FSSTAT', Proc.FSSTAT, () => encode.fsstat(v6Root)],
    ['FSINFO', Proc.FSINFO, () => encode.fsinfo(v6Root)],
    ['PATHCONF', Proc.PATHCONF, () => encode.pathconf(v6Root)],
    ['COMMIT', Proc.COMMIT, () => encode.commit(v6File, 0, 0)]
  ]

  it.each(calls)('%s with its handle is ACCES', async (_name, procedure, args) => {
    const reply = await client.callNfs(procedure, args())
    expect(reply.body.u32()).toBe(ACCES)
  })

  it('RENAME into it is refused', async () => {
    const result = await client.rename(loopRoot, 'l.txt', v6Root, 'moved.txt')
    expect(['ACCES', 'XDEV']).toContain(result.status)
  })

  it('LINK into it is refused', async () => {
    const result = await client.link(loopFile, v6Root, 'linked.txt')
    expect(['ACCES', 'XDEV']).toContain(result.status)
  })

  it('LINK out of it is refused', async () => {
    const result = await client.link(v6File, loopRoot, 'stolen.txt')
    expect(result.status).toBe('ACCES')
  })

  it('host directory is unchanged', () => {
    expect(diffSnapshots(before, snapshotTree(v6Dir))).toEqual([])
  })

  it('loop volume gained nothing', () => {
    expect(fs.readdirSync(loopDir)).toEqual(['l.txt'])
  })

  it('refusals are audited as blocked', async () => {
    client.close()
    await ipv4Node.stop()
    const rejected = ipv4Node.auditEvents().filter((event) => event.status === 'ACCES' || event.status === 'MNT3ERR_13')
    const unmarked = rejected.filter((event) => typeof event.blocked !== 'string').map((event) => `${event.procedure} ${event.path}`)
    expect(unmarked).toEqual([])
  })
})

describe('node whose volumes refuse 127.0.0.1', () => {
  let node: TestNode
  let client: RpcClient

  beforeAll(async () => {
    node = await startTestNode({ volumesYaml: localVolumeYaml('v6only', '    allowed_clients: [::1/128]\n') })
    client = await RpcClient.connect(node.port)
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true })
  })

  it('closes the connection unanswered', async () => {
    const reply = client.call(MOUNT_PROGRAM, 3, 1, (w) => w.string('/v6only'))
    await expect(reply).rejects.toThrow(/closed/)
  })
})

describe('default allowed clients', () => {
  let node: TestNode
  let client: Nfs3Client

  beforeAll(async () => {
    node = await startTestNode({ volumesYaml: localVolumeYaml('dflt') })
    client = await Nfs3Client.connect(node.port)
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    if (node) fs.rmSync(node.dataDir, { recursive: true, force: true })
  })

  it('loopback client can mount', async () => {
    const result = await client.mnt('/dflt')
    expect(result.status).toBe('OK')
  })

  it('EXPORT lists the loopback networks', async () => {
    const exports = await client.exports()
    const listed = exports.map((entry) => ({ dir: entry.dir, groups: [...entry.groups].sort() }))
    expect(listed).toEqual([{ dir: '/dflt', groups: ['127.0.0.0/8', '::1/128'] }])
  })
})

// A server namespace and a client namespace joined by a veth pair. The addresses 10.200.0.1 and
// 10.200.0.2 exist only inside these namespaces, which the tests create and delete.
describe('non-loopback client', () => {
  const suffix = randomBytes(3).toString('hex')
  const serverNs = `aegis-s-${suffix}`
  const clientNs = `aegis-c-${suffix}`
  const base = makeTempDir('aegis-netns-')
  const SERVER_ADDRESS = '10.200.0.1'
  const MIXED_PORT = 2049
  const DEFAULT_ONLY_PORT = 2050
  const nodes: NetnsNode[] = []
  let setupError: Error | null = null

  function mnt(path: string, xid: number): Buffer {
    return callRecord(xid, MOUNT_PROGRAM, 3, 1, (w) => w.string(path))
  }

  function mountStatus(outcome: RawOutcome | undefined): number | string {
    if (outcome?.reply === undefined) return outcome?.closed ? 'closed' : `error ${outcome?.error}`
    return outcome.reply.body.u32()
  }

  function writeConfig(name: string, port: number, volumes: string): string {
    const dataDir = path.join(base, name)
    const configPath = path.join(base, `${name}.yaml`)
    fs.writeFileSync(configPath, `node:\n  name: ${name}\n  data_dir: ${dataDir}\nnfs:\n  bind: '::'\n  port: ${port}\nvolumes:\n${volumes}`)
    return configPath
  }

  beforeAll(async () => {
    try {
      await run('ip', ['netns', 'add', serverNs])
      await run('ip', ['netns', 'add', clientNs])
      await run('ip', ['-n', serverNs, 'link', 'add', 'veth-s', 'type', 'veth', 'peer', 'name', 'veth-c', 'netns', clientNs])
      await run('ip', ['-n', serverNs, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', 'veth-s'])
      await run('ip', ['-n', clientNs, 'addr', 'add', '10.200.0.2/24', 'dev', 'veth-c'])
      for (const [ns, device] of [[serverNs, 'veth-s'], [clientNs, 'veth-c']]) {
        await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
        await run('ip', ['-n', ns, 'link', 'set', device, 'up'])
      }
    } catch (error) {
      setupError = error as Error
      return
    }

    const mixed = writeConfig('mixed', MIXED_PORT, localVolumeYaml('dflt') + localVolumeYaml('lan', '    allowed_clients: [10.200.0.0/24]\n'))
    const defaultOnly = writeConfig('default-only', DEFAULT_ONLY_PORT, localVolumeYaml('dflt'))
    nodes.push(...(await Promise.all([startNodeInNetns(serverNs, mixed), startNodeInNetns(serverNs, defaultOnly)])))
  })

  afterAll(async () => {
    for (const node of nodes) await node.stop()
    await run('ip', ['netns', 'del', clientNs]).catch(() => undefined)
    await run('ip', ['netns', 'del', serverNs]).catch(() => undefined)
    fs.rmSync(base, { recursive: true, force: true })
  })

  it('namespaces could be set up', () => {
    expect(setupError).toBeNull()
  })

  it('allowed network can mount', async () => {
    const [outcome] = await runRawClient(clientNs, SERVER_ADDRESS, MIXED_PORT, [mnt('/lan', 1)])
    expect(mountStatus(outcome)).toBe(0)
  })

  it('MNT of default volume is ACCES', async () => {
    const [outcome] = await runRawClient(clientNs, SERVER_ADDRESS, MIXED_PORT, [mnt('/dflt', 2)])
    expect(mountStatus(outcome)).toBe(ACCES)
  })

  it('IPv4 loopback can mount default', async () => {
    const [outcome] = await runRawClient(serverNs, '127.0.0.1', MIXED_PORT, [mnt('/dflt', 3)])
    expect(mountStatus(outcome)).toBe(0)
  })

  it('IPv6 loopback can mount default', async () => {
    const [outcome] = await runRawClient(serverNs, '::1', MIXED_PORT, [mnt('/dflt', 4)])
    expect(mountStatus(outcome)).toBe(0)
  })

  it('leaked default handle is ACCES', async () => {
    const [mounted] = await runRawClient(serverNs, '127.0.0.1', MIXED_PORT, [mnt('/dflt', 5)])
    mounted.reply!.body.u32()
    const handle = Buffer.from(mounted.reply!.body.opaque(64))
    const [outcome] = await runRawClient(clientNs, SERVER_ADDRESS, MIXED_PORT, [callRecord(6, NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(handle))])
    expect(mountStatus(outcome)).toBe(ACCES)
  })

  it('DUMP hides refused volumes', async () => {
    await runRawClient(serverNs, '127.0.0.1', MIXED_PORT, [mnt('/dflt', 9)])
    const [outcome] = await runRawClient(clientNs, SERVER_ADDRESS, MIXED_PORT, [callRecord(10, MOUNT_PROGRAM, 3, 2)])
    const body = outcome.reply!.body
    const dirs: string[] = []
    while (body.bool()) {
      body.opaque(255)
      dirs.push(body.opaque(1024).toString())
    }
    expect(dirs).not.toContain('/dflt')
  })

  it('default-only node drops the connection', async () => {
    const [outcome] = await runRawClient(clientNs, SERVER_ADDRESS, DEFAULT_ONLY_PORT, [mnt('/dflt', 7)])
    expect(outcome).toEqual({ closed: true })
  })

  it('default-only node serves loopback', async () => {
    const [outcome] = await runRawClient(serverNs, '127.0.0.1', DEFAULT_ONLY_PORT, [mnt('/dflt', 8)])
    expect(mountStatus(outcome)).toBe(0)
  })
})
