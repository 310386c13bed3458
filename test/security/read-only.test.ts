// A read-only volume: every modifying procedure returns ROFS and leaves the host directory exactly
// as it was, while reading procedures keep working.

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { diffSnapshots, type HostEntry, snapshotTree } from '../helpers/attack.js'
import { Access, Nfs3Client, StableHow } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'

const MODIFYING_BITS = Access.MODIFY | Access.EXTEND | Access.DELETE
const ALL_BITS = Access.READ | Access.LOOKUP | Access.MODIFY | Access.EXTEND | Access.DELETE | Access.EXECUTE

/** Creates the files every read-only volume here starts with. */
function fillVolume(dir: string): void {
  fs.mkdirSync(path.join(dir, 'dir', 'empty'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'data.txt'), 'read-only data\n')
  fs.writeFileSync(path.join(dir, 'dir', 'nested.txt'), 'nested\n')
  fs.symlinkSync('data.txt', path.join(dir, 'link'))
}

describe('read-only volume', () => {
  const base = makeTempDir('aegis-ro-')
  const hostDir = path.join(base, 'vol')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer
  let data: Buffer
  let dir: Buffer
  let before: Map<string, HostEntry>

  beforeAll(async () => {
    fillVolume(hostDir)
    before = snapshotTree(hostDir)
    node = await startTestNode({ dataDir: path.join(base, 'data'), volumesYaml: hostPathVolumeYaml('ro', hostDir, 'read-only') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/ro')
    data = await client.lookupHandle(root, 'data.txt')
    dir = await client.lookupHandle(root, 'dir')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(base, { recursive: true, force: true })
  })

  describe('reading procedures work', () => {
    it('GETATTR of root works', async () => {
      const result = await client.getattr(root)
      expect(result.status).toBe('OK')
    })

    it('READ returns host content', async () => {
      const result = await client.read(data, 0, 4096)
      expect(result.data?.toString()).toBe('read-only data\n')
    })

    it('LOOKUP of nested file works', async () => {
      const result = await client.lookup(dir, 'nested.txt')
      expect(result.status).toBe('OK')
    })

    it('READDIR lists host names', async () => {
      const { entries } = await client.listAll(root)
      expect(entries.map((entry) => entry.name).sort()).toEqual(['.', '..', 'data.txt', 'dir', 'link'])
    })

    it('READDIRPLUS lists host names', async () => {
      const { entries } = await client.listAll(dir, { plus: true })
      expect(entries.map((entry) => entry.name).sort()).toEqual(['.', '..', 'empty', 'nested.txt'])
    })

    it('READLINK returns the target', async () => {
      const result = await client.readlink(await client.lookupHandle(root, 'link'))
      expect(result.target?.toString()).toBe('data.txt')
    })

    it('FSSTAT works', async () => {
      const result = await client.fsstat(root)
      expect(result.status).toBe('OK')
    })

    it('FSINFO works', async () => {
      const result = await client.fsinfo(root)
      expect(result.status).toBe('OK')
    })

    it('PATHCONF works', async () => {
      const result = await client.pathconf(root)
      expect(result.status).toBe('OK')
    })
  })

  describe('ACCESS', () => {
    it('file grants no modification', async () => {
      const result = await client.access(data, ALL_BITS)
      expect(result.access! & MODIFYING_BITS).toBe(0)
    })

    it('file grants READ', async () => {
      const result = await client.access(data, ALL_BITS)
      expect(result.access! & Access.READ).toBe(Access.READ)
    })

    it('directory grants no modification', async () => {
      const result = await client.access(dir, ALL_BITS)
      expect(result.access! & MODIFYING_BITS).toBe(0)
    })

    it('directory grants LOOKUP', async () => {
      const result = await client.access(dir, ALL_BITS)
      expect(result.access! & Access.LOOKUP).toBe(Access.LOOKUP)
    })
  })

  describe('modifying procedures return ROFS', () => {
    it('SETATTR mode', async () => {
      const result = await client.setattr(data, { mode: 0o777 })
      expect(result.status).toBe('ROFS')
    })

    it('SETATTR size', async () => {
      const result = await client.setattr(data, { size: 0 })
      expect(result.status).toBe('ROFS')
    })

    it('SETATTR times', async () => {
      const result = await client.setattr(data, { atime: 'server', mtime: 'server' })
      expect(result.status).toBe('ROFS')
    })

    it('SETATTR owner', async () => {
      const result = await client.setattr(data, { uid: 1000, gid: 1000 })
      expect(result.status).toBe('ROFS')
    })

    it('SETATTR directory mode', async () => {
      const result = await client.setattr(dir, { mode: 0o700 })
      expect(result.status).toBe('ROFS')
    })

    it('WRITE', async () => {
      const result = await client.write(data, 0, Buffer.from('changed'), StableHow.FILE_SYNC)
      expect(result.status).toBe('ROFS')
    })

    it('WRITE past EOF', async () => {
      const result = await client.write(data, 1 << 20, Buffer.from('appended'), StableHow.UNSTABLE)
      expect(result.status).toBe('ROFS')
    })

    it('WRITE of zero bytes', async () => {
      const result = await client.write(data, 0, Buffer.alloc(0), StableHow.FILE_SYNC)
      expect(result.status).toBe('ROFS')
    })

    it.each(['unchecked', 'guarded'] as const)('CREATE %s new name', async (mode) => {
      const result = await client.create(root, `new-${mode}.txt`, { mode })
      expect(result.status).toBe('ROFS')
    })

    it('CREATE exclusive new name', async () => {
      const result = await client.create(root, 'new-exclusive.txt', { mode: 'exclusive', verifier: Buffer.from('12345678') })
      expect(result.status).toBe('ROFS')
    })

    it('CREATE truncating existing file', async () => {
      const result = await client.create(root, 'data.txt', { mode: 'unchecked', attributes: { size: 0 } })
      expect(result.status).toBe('ROFS')
    })

    it('MKDIR', async () => {
      const result = await client.mkdir(root, 'new-dir')
      expect(result.status).toBe('ROFS')
    })

    it('SYMLINK', async () => {
      const result = await client.symlink(root, 'new-link', 'data.txt')
      expect(result.status).toBe('ROFS')
    })

    it('MKNOD', async () => {
      const result = await client.mknodFifo(root, 'new-fifo')
      expect(result.status).toBe('ROFS')
    })

    it('REMOVE', async () => {
      const result = await client.remove(root, 'data.txt')
      expect(result.status).toBe('ROFS')
    })

    it('REMOVE of symlink', async () => {
      const result = await client.remove(root, 'link')
      expect(result.status).toBe('ROFS')
    })

    it('RMDIR of empty directory', async () => {
      const result = await client.rmdir(dir, 'empty')
      expect(result.status).toBe('ROFS')
    })

    it('RENAME', async () => {
      const result = await client.rename(root, 'data.txt', root, 'renamed.txt')
      expect(result.status).toBe('ROFS')
    })

    it('RENAME between directories', async () => {
      const result = await client.rename(dir, 'nested.txt', root, 'nested.txt')
      expect(result.status).toBe('ROFS')
    })

    it('LINK', async () => {
      const result = await client.link(data, root, 'hard.txt')
      expect(result.status).toBe('ROFS')
    })

    it('COMMIT is harmless', async () => {
      const result = await client.commit(data)
      expect(result.status).toBe('OK')
    })
  })

  describe('concurrent writers', () => {
    it('all get ROFS', async () => {
      // Eight connections send all their modifying calls before reading any reply.
      const writers = await Promise.all(Array.from({ length: 8 }, () => Nfs3Client.connect(node.port)))
      try {
        const calls: Array<Promise<{ status: string }>> = []
        for (const [index, writer] of writers.entries()) {
          const volumeRoot = await writer.mount('/ro')
          const file = await writer.lookupHandle(volumeRoot, 'data.txt')
          for (let k = 0; k < 8; k++) {
            calls.push(writer.write(file, k * 4096, Buffer.alloc(4096, index), StableHow.FILE_SYNC))
            calls.push(writer.create(volumeRoot, `new-${index}-${k}.txt`))
            calls.push(writer.remove(volumeRoot, 'data.txt'))
          }
        }
        const statuses = (await Promise.all(calls)).map((result) => result.status)
        expect(statuses.length).toBe(8 * 8 * 3)
        expect(statuses.filter((status) => status !== 'ROFS')).toEqual([])
      } finally {
        for (const writer of writers) writer.close()
      }
    })
  })

  describe('host directory afterwards', () => {
    it('is unchanged', () => {
      expect(diffSnapshots(before, snapshotTree(hostDir))).toEqual([])
    })
  })
})

// The usual setting of a read-only volume: a host directory that is itself on a read-only mount.
describe('read-only volume on a read-only mount', () => {
  const base = makeTempDir('aegis-ro-mount-')
  const source = path.join(base, 'source')
  const mountPoint = path.join(base, 'mnt')
  let mounted = false
  let node: TestNode | undefined
  let client: Nfs3Client | undefined
  let root: Buffer

  beforeAll(async () => {
    fillVolume(source)
    fs.mkdirSync(mountPoint)
    try {
      execFileSync('mount', ['--bind', source, mountPoint], { stdio: 'pipe' })
      mounted = true
      execFileSync('mount', ['-o', 'remount,ro,bind', mountPoint], { stdio: 'pipe' })
    } catch (error) {
      if (mounted) execFileSync('umount', [mountPoint])
      mounted = false
      console.warn(`skipping read-only mount tests: ${(error as Error).message}`)
      return
    }
    node = await startTestNode({ dataDir: path.join(base, 'data'), volumesYaml: hostPathVolumeYaml('rom', mountPoint, 'read-only') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/rom')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    if (mounted) execFileSync('umount', [mountPoint])
    fs.rmSync(base, { recursive: true, force: true })
  })

  it('READ returns host content', async (context) => {
    if (!mounted) context.skip()
    const result = await client!.read(await client!.lookupHandle(root, 'data.txt'), 0, 4096)
    expect(result.status).toBe('OK')
  })

  it('COMMIT is harmless', async (context) => {
    if (!mounted) context.skip()
    const result = await client!.commit(await client!.lookupHandle(root, 'data.txt'))
    expect(result.status).toBe('OK')
  })

  it('WRITE returns ROFS', async (context) => {
    if (!mounted) context.skip()
    const result = await client!.write(await client!.lookupHandle(root, 'data.txt'), 0, Buffer.from('x'), StableHow.FILE_SYNC)
    expect(result.status).toBe('ROFS')
  })
})
