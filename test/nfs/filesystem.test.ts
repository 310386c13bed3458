// FSSTAT, FSINFO, PATHCONF and ACCESS (RFC 1813, sections 3.3.4 and 3.3.18-3.3.20), size_limit
// accounting as FSSTAT reports it, and the fsid of each volume.

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { Access, decode, encode, Nfs3Client, Proc, StableHow } from '../helpers/nfs3.js'
import { NFS_PROGRAM, recordOf } from '../helpers/rpc-client.js'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode } from '../helpers/node.js'

const KiB = 1024
const MiB = 1024 * KiB
const ALL_ACCESS = Access.READ | Access.LOOKUP | Access.MODIFY | Access.EXTEND | Access.DELETE | Access.EXECUTE

describe('fsstat', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client

  beforeAll(async () => {
    mounted = await startMounted({ volumesYaml: localVolumeYaml('scratch', '    size_limit: 1Mi\n') })
    nfs = mounted.nfs
  })
  afterAll(async () => mounted.stop())

  async function freeBytes(): Promise<number> {
    const stat = await nfs.fsstat(mounted.root)
    expect(stat.status).toBe('OK')
    return stat.fbytes!
  }

  it('reports size_limit as tbytes', async () => {
    const stat = await nfs.fsstat(mounted.root)
    expect(stat.status).toBe('OK')
    expect(stat.tbytes).toBe(MiB)
    expect(stat.fbytes).toBeLessThanOrEqual(stat.tbytes!)
    expect(stat.abytes).toBeLessThanOrEqual(stat.fbytes!)
    expect(stat.attributes?.type).toBe('DIR')
  })

  it('write of 300 KiB lowers fbytes', async () => {
    const before = await freeBytes()
    const handle = await nfs.writeFile(mounted.root, 'three-hundred', Buffer.alloc(300 * KiB, 1))
    expect(await freeBytes()).toBe(before - 300 * KiB)
    expect((await nfs.fsstat(mounted.root)).abytes).toBe(before - 300 * KiB)

    expect((await nfs.setattr(handle, { size: 100 * KiB })).status).toBe('OK')
    expect(await freeBytes()).toBe(before - 100 * KiB)

    expect((await nfs.remove(mounted.root, 'three-hundred')).status).toBe('OK')
    expect(await freeBytes()).toBe(before)
  })

  it('write over the limit is refused', async () => {
    const before = await freeBytes()
    await nfs.writeFile(mounted.root, 'filler', Buffer.alloc(before - 50 * KiB))
    const handle = await nfs.writeFile(mounted.root, 'too-big')
    const result = await nfs.write(handle, 0, Buffer.alloc(100 * KiB))
    expect(['DQUOT', 'NOSPC']).toContain(result.status)
    expect((await nfs.attributesOf(handle)).size).toBe(0)
    expect(await freeBytes()).toBe(50 * KiB)
    await nfs.remove(mounted.root, 'too-big')
    await nfs.remove(mounted.root, 'filler')
    expect(await freeBytes()).toBe(before)
  })

  it('overwrite in a full volume is allowed', async () => {
    const before = await freeBytes()
    const handle = await nfs.writeFile(mounted.root, 'full', Buffer.alloc(before, 1))
    expect(await freeBytes()).toBe(0)
    const result = await nfs.write(handle, 1000, Buffer.alloc(4096, 2))
    expect(result.status).toBe('OK')
    expect(await freeBytes()).toBe(0)
    await nfs.remove(mounted.root, 'full')
    expect(await freeBytes()).toBe(before)
  })

  it('pipelined extending writes keep usage exact', async () => {
    const before = await freeBytes()
    const handle = await nfs.writeFile(mounted.root, 'parallel')
    const block = 32 * KiB
    const blocks = Math.floor(before / block) + 8
    const results = await Promise.all(Array.from({ length: blocks }, (_, i) => nfs.write(handle, i * block, Buffer.alloc(block, 3))))
    const refused = results.filter((result) => result.status !== 'OK')
    expect(refused.length).toBeGreaterThan(0)
    expect(refused.every((result) => result.status === 'DQUOT' || result.status === 'NOSPC')).toBe(true)
    const size = (await nfs.attributesOf(handle)).size
    expect(size).toBeLessThanOrEqual(before)
    expect(await freeBytes()).toBe(before - size)
    await nfs.remove(mounted.root, 'parallel')
    expect(await freeBytes()).toBe(before)
  })

  it('extending SETATTR over the limit is refused', async () => {
    const handle = await nfs.writeFile(mounted.root, 'too-long')
    const result = await nfs.setattr(handle, { size: 2 * MiB })
    expect(['DQUOT', 'NOSPC']).toContain(result.status)
    expect((await nfs.attributesOf(handle)).size).toBe(0)
    await nfs.remove(mounted.root, 'too-long')
  })

  it('hard link counts once', async () => {
    const before = await freeBytes()
    const handle = await nfs.writeFile(mounted.root, 'linked-a', Buffer.alloc(50 * KiB))
    expect((await nfs.link(handle, mounted.root, 'linked-b')).status).toBe('OK')
    expect(await freeBytes()).toBe(before - 50 * KiB)
    await nfs.remove(mounted.root, 'linked-a')
    expect(await freeBytes()).toBe(before - 50 * KiB)
    await nfs.remove(mounted.root, 'linked-b')
    expect(await freeBytes()).toBe(before)
  })

  it('rename over a file frees its bytes', async () => {
    const before = await freeBytes()
    await nfs.writeFile(mounted.root, 'small-one', Buffer.alloc(10 * KiB))
    await nfs.writeFile(mounted.root, 'large-one', Buffer.alloc(90 * KiB))
    expect((await nfs.rename(mounted.root, 'small-one', mounted.root, 'large-one')).status).toBe('OK')
    expect(await freeBytes()).toBe(before - 10 * KiB)
    await nfs.remove(mounted.root, 'large-one')
    expect(await freeBytes()).toBe(before)
  })

  it('file counts are consistent', async () => {
    const stat = await nfs.fsstat(mounted.root)
    expect(stat.ffiles).toBeLessThanOrEqual(stat.tfiles!)
    expect(stat.afiles).toBeLessThanOrEqual(stat.ffiles!)
  })
})

describe('fsstat across restart', () => {
  it('usage survives a restart', async () => {
    const volumesYaml = localVolumeYaml('scratch', '    size_limit: 1Mi\n')
    const first = await startMounted({ volumesYaml })
    await first.nfs.writeFile(first.root, 'kept', Buffer.alloc(200 * KiB))
    const dataDir = first.node.dataDir
    await first.stop()

    const second = await startMounted({ volumesYaml, dataDir })
    try {
      expect((await second.nfs.fsstat(second.root)).fbytes).toBe(MiB - 200 * KiB)
    } finally {
      await second.stop()
    }
  })
})

describe('fsstat during a rescan', () => {
  it('writes during a rescan stay counted', async () => {
    const dataDir = makeTempDir()
    const volumeDir = path.join(dataDir, 'volumes', 'scratch')
    fs.mkdirSync(volumeDir, { recursive: true })
    // Eight targets sit among 3000 other files. A scan visits 2048 objects before it first
    // yields to pending requests, so most targets are counted before the writes below land.
    const crowdDir = path.join(volumeDir, 'crowd')
    fs.mkdirSync(crowdDir)
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(crowdDir, `f${i}`), '')
    for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(crowdDir, `target-${i}`), '')

    const mounted = await startMounted({ volumesYaml: localVolumeYaml('scratch', '    size_limit: 10Mi\n'), dataDir })
    const { nfs, root } = mounted
    try {
      const targets: Buffer[] = []
      for (let i = 0; i < 8; i++) targets.push(await nfs.lookupHandle(root, `crowd/target-${i}`))
      const ghost = await nfs.writeFile(root, 'ghost')
      await nfs.remove(root, 'ghost')
      // A handle the node does not know starts a rescan. Waiting two seconds lets the rescan
      // run even where the node limits rescans to one every two seconds.
      await new Promise((resolve) => setTimeout(resolve, 2100))

      const block = 4 * KiB
      const calls = [nfs.rpc.encodeCall(NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(ghost))]
      for (const target of targets) calls.push(nfs.rpc.encodeCall(NFS_PROGRAM, 3, Proc.WRITE, encode.write(target, 0, Buffer.alloc(block, 1), StableHow.FILE_SYNC)))
      const replies = calls.map((call) => nfs.rpc.reply(call.xid))
      nfs.rpc.sendRaw(Buffer.concat(calls.map((call) => recordOf(call.body))))
      const results = await Promise.all(replies)
      expect(decode.getattr(results[0].body).status).toBe('STALE')
      for (const reply of results.slice(1)) expect(decode.write(reply.body).status).toBe('OK')

      // Directories count at their size too, so the crowd directory's blocks are part of the usage.
      const directoryBytes = fs.statSync(crowdDir).size
      expect((await nfs.fsstat(root)).fbytes).toBe(10 * MiB - 8 * block - directoryBytes)
    } finally {
      await mounted.stop()
    }
  })
})

describe('fsinfo and pathconf', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
  })
  afterAll(async () => mounted.stop())

  it('FSINFO transfer sizes at least 1 MiB', async () => {
    const info = await nfs.fsinfo(mounted.root)
    expect(info.status).toBe('OK')
    expect(info.rtmax).toBeGreaterThanOrEqual(MiB)
    expect(info.wtmax).toBeGreaterThanOrEqual(MiB)
    expect(info.rtpref).toBeLessThanOrEqual(info.rtmax!)
    expect(info.wtpref).toBeLessThanOrEqual(info.wtmax!)
    expect(info.dtpref).toBeGreaterThan(0)
  })

  it('FSINFO properties and limits', async () => {
    const info = await nfs.fsinfo(mounted.root)
    const FSF3_LINK = 0x1
    const FSF3_SYMLINK = 0x2
    const FSF3_CANSETTIME = 0x10
    expect(info.properties! & FSF3_LINK).toBe(FSF3_LINK)
    expect(info.properties! & FSF3_SYMLINK).toBe(FSF3_SYMLINK)
    expect(info.properties! & FSF3_CANSETTIME).toBe(FSF3_CANSETTIME)
    expect(info.maxfilesize! > BigInt(MiB)).toBe(true)
    expect(info.timeDelta!.nsec).toBeLessThan(1e9)
    expect(info.attributes?.type).toBe('DIR')
  })

  it('PATHCONF name_max is 255', async () => {
    const conf = await nfs.pathconf(mounted.root)
    expect(conf.status).toBe('OK')
    expect(conf.nameMax).toBe(255)
    expect(conf.noTrunc).toBe(true)
    expect(conf.casePreserving).toBe(true)
    expect(conf.linkmax).toBeGreaterThanOrEqual(1)
  })

  it('FSINFO of a bogus handle is BADHANDLE', async () => {
    const info = await nfs.fsinfo(Buffer.alloc(38, 7))
    expect(['BADHANDLE', 'STALE']).toContain(info.status)
    expect(info.attributes).toBeNull()
  })
})

describe('access', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let readOnlyRoot: Buffer

  beforeAll(async () => {
    const hostDir = makeTempDir('aegis-ro-')
    fs.writeFileSync(path.join(hostDir, 'fixed'), 'x')
    mounted = await startMounted({ volumesYaml: localVolumeYaml('scratch') + hostPathVolumeYaml('frozen', hostDir, 'read-only') })
    nfs = mounted.nfs
    readOnlyRoot = await nfs.mount('/frozen')
  })
  afterAll(async () => mounted.stop())

  it('file 0644 grants read and modify', async () => {
    const file = await nfs.writeFile(mounted.root, 'plain')
    await nfs.setattr(file, { mode: 0o644 })
    const result = await nfs.access(file, ALL_ACCESS)
    expect(result.status).toBe('OK')
    expect(result.access! & Access.READ).toBe(Access.READ)
    expect(result.access! & Access.MODIFY).toBe(Access.MODIFY)
    expect(result.access! & Access.EXECUTE).toBe(0)
  })

  it('directory grants lookup and delete', async () => {
    const result = await nfs.access(mounted.root, ALL_ACCESS)
    expect(result.access! & Access.LOOKUP).toBe(Access.LOOKUP)
    expect(result.access! & Access.DELETE).toBe(Access.DELETE)
  })

  it('granted bits stay within the request', async () => {
    const result = await nfs.access(mounted.root, Access.READ)
    expect(result.access! & ~Access.READ).toBe(0)
  })

  it('read-only volume grants no modify', async () => {
    const file = await nfs.lookupHandle(readOnlyRoot, 'fixed')
    const result = await nfs.access(file, ALL_ACCESS)
    expect(result.access! & Access.READ).toBe(Access.READ)
    expect(result.access! & (Access.MODIFY | Access.EXTEND)).toBe(0)
  })
})

describe('fsid', () => {
  it('each volume has its own fsid', async () => {
    const node = await startTestNode({ volumesYaml: localVolumeYaml('alpha') + localVolumeYaml('beta') + localVolumeYaml('gamma') })
    const nfs = await Nfs3Client.connect(node.port)
    try {
      const fsids: bigint[] = []
      for (const name of ['alpha', 'beta', 'gamma']) {
        const root = await nfs.mount(`/${name}`)
        const file = await nfs.writeFile(root, 'file')
        const dir = await nfs.mkdirHandle(root, 'dir')
        const rootFsid = (await nfs.attributesOf(root)).fsid
        expect((await nfs.attributesOf(file)).fsid).toBe(rootFsid)
        expect((await nfs.attributesOf(dir)).fsid).toBe(rootFsid)
        fsids.push(rootFsid)
      }
      expect(new Set(fsids).size).toBe(3)
    } finally {
      nfs.close()
      await node.stop()
    }
  })
})
