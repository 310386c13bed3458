// File handles: size, stability across restarts and renames, and resistance to forgery (a
// changed byte, another volume's export id, another node's key, a reused inode number).

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { Nfs3Client } from '../helpers/nfs3.js'
import { localVolumeYaml, makeTempDir, startTestNode } from '../helpers/node.js'

const REJECTED = ['BADHANDLE', 'STALE']

describe('handle forgery', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let file: Buffer
  let fileId: number
  let otherRoot: Buffer

  beforeAll(async () => {
    mounted = await startMounted({ volumesYaml: localVolumeYaml('scratch') + localVolumeYaml('other') })
    nfs = mounted.nfs
    file = await nfs.writeFile(mounted.root, 'target', 'target contents')
    fileId = (await nfs.attributesOf(file)).fileid
    otherRoot = await nfs.mount('/other')
  })
  afterAll(async () => mounted.stop())

  it('handles are at most 64 bytes', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'sizes')
    const link = await nfs.symlink(dir, 'link', 'anywhere')
    const listing = await nfs.readdirplus(dir, 0n, Buffer.alloc(8), 4096, 16384)
    const handles = [mounted.root, otherRoot, file, dir, link.handle!, ...listing.entries.map((entry) => entry.handle!)]
    for (const handle of handles) {
      expect(handle.length).toBeGreaterThan(0)
      expect(handle.length).toBeLessThanOrEqual(64)
    }
  })

  it('every single-byte change is rejected', async () => {
    for (let index = 0; index < file.length; index++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const forged = Buffer.from(file)
        forged[index] ^= mask
        const result = await nfs.getattr(forged)
        expect(REJECTED, `byte ${index} xor ${mask}`).toContain(result.status)
      }
    }
  })

  it.each([
    ['empty', (h: Buffer) => h.subarray(0, 0)],
    ['shortened', (h: Buffer) => h.subarray(0, h.length - 1)],
    ['lengthened', (h: Buffer) => Buffer.concat([h, Buffer.alloc(1)])],
    ['zeroed', (h: Buffer) => Buffer.alloc(h.length)]
  ])('%s handle is rejected', async (_label, forge) => {
    expect(REJECTED).toContain((await nfs.getattr(forge(file))).status)
  })

  it('export id of another volume is rejected', async () => {
    // Handles from one codec carry the export id at the same offset. Copying the bytes in which
    // the two roots differ turns the file handle into a would-be handle of the other volume.
    const forged = Buffer.from(file)
    for (let index = 0; index < Math.min(otherRoot.length, mounted.root.length); index++) {
      if (mounted.root[index] !== otherRoot[index] && file[index] === mounted.root[index]) forged[index] = otherRoot[index]
    }
    expect(forged.equals(file)).toBe(false)
    const result = await nfs.getattr(forged)
    expect(REJECTED).toContain(result.status)
  })

  it('root handle of another volume differs', async () => {
    expect(otherRoot.equals(mounted.root)).toBe(false)
    const a = await nfs.attributesOf(mounted.root)
    const b = await nfs.attributesOf(otherRoot)
    expect(b.fsid).not.toBe(a.fsid)
  })

  it('handle from another node is rejected', async () => {
    const stranger = await startMounted()
    try {
      const strangerFile = await stranger.nfs.writeFile(stranger.root, 'target', 'other node')
      expect(REJECTED).toContain((await nfs.getattr(strangerFile)).status)
      expect(REJECTED).toContain((await nfs.getattr(stranger.root)).status)
    } finally {
      await stranger.stop()
    }
  })

  it('forged handle never reaches another file', async () => {
    for (let index = 0; index < file.length; index++) {
      const forged = Buffer.from(file)
      forged[index] ^= 0x01
      const result = await nfs.getattr(forged)
      if (result.status === 'OK') expect(result.attributes?.fileid, `byte ${index}`).toBe(fileId)
    }
    expect((await nfs.getattr(file)).attributes?.fileid).toBe(fileId)
  })

  it('reused inode never matches an old handle', async () => {
    // ext4 gives a freed inode number to the next new file, so a create right after a remove
    // usually gets the old fileid. The old handle must then be STALE. REMOVE and CREATE are
    // pipelined to keep the two files' birth times close; rounds without reuse check nothing.
    let reused = 0
    for (let round = 0; round < 500 && reused < 100; round++) {
      const created = await nfs.create(mounted.root, `churn-${round}`, { mode: 'guarded' })
      const oldHandle = created.handle!
      const oldId = created.attributes!.fileid
      const [removed, replacement] = await Promise.all([
        nfs.remove(mounted.root, `churn-${round}`),
        nfs.create(mounted.root, `churn-new-${round}`, { mode: 'guarded' })
      ])
      expect(removed.status).toBe('OK')
      if (replacement.attributes!.fileid === oldId) {
        reused++
        const result = await nfs.getattr(oldHandle)
        expect(result.status, `round ${round}: old handle of a removed file reached inode ${oldId} again`).toBe('STALE')
      }
      await nfs.remove(mounted.root, `churn-new-${round}`)
    }
  })
})

describe('handle stability', () => {
  it('handles survive rename of file and parent', async () => {
    const mounted = await startMounted()
    const { nfs, root } = mounted
    try {
      const parent = await nfs.mkdirHandle(root, 'parent-before')
      const file = await nfs.writeFile(parent, 'file-before', 'stable contents')
      const fileId = (await nfs.attributesOf(file)).fileid

      expect((await nfs.rename(parent, 'file-before', parent, 'file-after')).status).toBe('OK')
      expect((await nfs.attributesOf(file)).fileid).toBe(fileId)
      expect((await nfs.rename(root, 'parent-before', root, 'parent-after')).status).toBe('OK')
      const after = await nfs.getattr(file)
      expect(after.status).toBe('OK')
      expect(after.attributes?.fileid).toBe(fileId)
      expect((await nfs.readFile(file)).toString()).toBe('stable contents')
      expect((await nfs.lookupHandle(root, 'parent-after/file-after')).equals(file)).toBe(true)
      expect((await nfs.write(file, 0, Buffer.from('STABLE'))).status).toBe('OK')
      const onDisk = path.join(mounted.node.dataDir, 'volumes', 'scratch', 'parent-after', 'file-after')
      expect(fs.readFileSync(onDisk, 'utf8')).toBe('STABLE contents')
    } finally {
      await mounted.stop()
    }
  })

  it.each([
    ['without size_limit', ''],
    ['with size_limit', '    size_limit: 10Mi\n']
  ])('old handles work after restart %s', async (_label, extra) => {
    const volumesYaml = localVolumeYaml('scratch', extra)
    const dataDir = makeTempDir()
    const first = await startMounted({ volumesYaml, dataDir })
    const dir = await first.nfs.mkdirHandle(first.root, 'deep')
    const sub = await first.nfs.mkdirHandle(dir, 'deeper')
    const file = await first.nfs.writeFile(sub, 'file', 'survives restarts')
    const root = first.root
    const fsid = (await first.nfs.attributesOf(file)).fsid
    await first.stop()

    const node = await startTestNode({ volumesYaml, dataDir })
    // A fresh client that never mounts or looks anything up: only the old handles are used.
    const nfs = await Nfs3Client.connect(node.port)
    try {
      const attributes = await nfs.getattr(file)
      expect(attributes.status).toBe('OK')
      expect(attributes.attributes?.size).toBe(17)
      expect(attributes.attributes?.fsid).toBe(fsid)
      expect((await nfs.readFile(file)).toString()).toBe('survives restarts')
      expect((await nfs.getattr(dir)).status).toBe('OK')
      expect((await nfs.getattr(root)).status).toBe('OK')
      expect((await nfs.lookupHandle(root, 'deep/deeper/file')).equals(file)).toBe(true)
      expect((await nfs.mount('/scratch')).equals(root)).toBe(true)
    } finally {
      nfs.close()
      await node.stop()
    }
  })

  it('renamed parent still resolves after restart', async () => {
    const dataDir = makeTempDir()
    const first = await startMounted({ dataDir })
    const dir = await first.nfs.mkdirHandle(first.root, 'before')
    const file = await first.nfs.writeFile(dir, 'inside', 'renamed parent')
    expect((await first.nfs.rename(first.root, 'before', first.root, 'after')).status).toBe('OK')
    await first.stop()

    const node = await startTestNode({ volumesYaml: localVolumeYaml('scratch'), dataDir })
    const nfs = await Nfs3Client.connect(node.port)
    try {
      expect((await nfs.readFile(file)).toString()).toBe('renamed parent')
      expect((await nfs.lookup(dir, 'inside')).handle?.equals(file)).toBe(true)
    } finally {
      nfs.close()
      await node.stop()
    }
  })

  it('second old handle needs no rescan', async () => {
    const dataDir = makeTempDir()
    const first = await startMounted({ dataDir })
    const early = await first.nfs.writeFile(first.root, 'early', 'e')
    const late = await first.nfs.writeFile(first.root, 'late', 'l')
    await first.stop()

    const node = await startTestNode({ volumesYaml: localVolumeYaml('scratch'), dataDir })
    const nfs = await Nfs3Client.connect(node.port)
    try {
      // The first unknown handle triggers a scan. The second handle must be found by that same
      // scan, because no lookup happens in between and the next scan is two seconds away.
      expect((await nfs.getattr(early)).status).toBe('OK')
      expect((await nfs.getattr(late)).status).toBe('OK')
    } finally {
      nfs.close()
      await node.stop()
    }
  })

  it('host-made file resolves after restart', async () => {
    const dataDir = makeTempDir()
    const node = await startTestNode({ volumesYaml: localVolumeYaml('scratch'), dataDir })
    const nfs = await Nfs3Client.connect(node.port)
    try {
      const root = await nfs.mount('/scratch')
      // An unknown handle makes the node scan; a file made on the host right after the scan is
      // found by LOOKUP, which needs no scan.
      expect(REJECTED).toContain((await nfs.getattr(Buffer.alloc(38, 1))).status)
      fs.writeFileSync(path.join(dataDir, 'volumes', 'scratch', 'host-made'), 'from the host')
      const handle = await nfs.lookupHandle(root, 'host-made')
      expect((await nfs.readFile(handle)).toString()).toBe('from the host')
    } finally {
      nfs.close()
      await node.stop()
    }
  })

  it('cookie verifier from before restart is BAD_COOKIE', async () => {
    const dataDir = makeTempDir()
    const first = await startMounted({ dataDir })
    for (let i = 0; i < 40; i++) await first.nfs.writeFile(first.root, `entry-${i}`)
    const page = await first.nfs.readdir(first.root, 0n, Buffer.alloc(8), 512)
    expect(page.eof).toBe(false)
    await first.stop()

    const second = await startMounted({ dataDir })
    try {
      const last = page.entries[page.entries.length - 1]
      const result = await second.nfs.readdir(second.root, last.cookie, page.cookieverf!, 512)
      expect(result.status).toBe('BAD_COOKIE')
    } finally {
      await second.stop()
    }
  })
})

describe('handle after descriptor eviction', () => {
  it('linked file survives losing its first name', async () => {
    const mounted = await startMounted()
    const { nfs, root } = mounted
    try {
      const file = await nfs.writeFile(root, 'first-name', 'linked contents')
      expect((await nfs.link(file, root, 'second-name')).status).toBe('OK')
      expect((await nfs.remove(root, 'first-name')).status).toBe('OK')
      expect((await nfs.getattr(file)).status).toBe('OK')

      // The node keeps at most 4096 objects open, so touching more closes the oldest. The next
      // access to the linked file must then find it again without its removed name.
      const crowdPath = path.join(mounted.node.dataDir, 'volumes', 'scratch', 'crowd')
      fs.mkdirSync(crowdPath)
      for (let i = 0; i < 4200; i++) fs.writeFileSync(path.join(crowdPath, `f${i}`), '')
      const crowd = await nfs.lookupHandle(root, 'crowd')
      const { entries } = await nfs.listAll(crowd, { plus: true, dircount: 65536, maxcount: 262144 })
      const handles = entries.filter((entry) => entry.name.startsWith('f')).map((entry) => entry.handle!)
      expect(handles.length).toBe(4200)
      for (let start = 0; start < handles.length; start += 200) {
        const batch = await Promise.all(handles.slice(start, start + 200).map((handle) => nfs.getattr(handle)))
        expect(batch.every((result) => result.status === 'OK')).toBe(true)
      }

      const after = await nfs.getattr(file)
      expect(after.status).toBe('OK')
      expect(after.attributes?.nlink).toBe(1)
      expect((await nfs.readFile(file)).toString()).toBe('linked contents')
    } finally {
      await mounted.stop()
    }
  })
})

