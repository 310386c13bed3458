// Volume boundaries as a client sees them: read-only volumes refuse every change, symlinks made
// on the host are never followed, and a handle stops working when its export no longer admits
// the client.

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { Nfs3Client } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode } from '../helpers/node.js'

/** Lists a host directory tree as "relative/path:contents" lines, to compare before and after. */
function snapshot(root: string): string[] {
  const lines: string[] = []
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name)
      const stat = fs.lstatSync(full)
      const relative = path.relative(root, full)
      if (stat.isSymbolicLink()) lines.push(`${relative} -> ${fs.readlinkSync(full)}`)
      else if (stat.isDirectory()) {
        lines.push(`${relative}/ ${(stat.mode & 0o7777).toString(8)}`)
        walk(full)
      } else lines.push(`${relative}: ${fs.readFileSync(full, 'utf8')} ${(stat.mode & 0o7777).toString(8)}`)
    }
  }
  walk(root)
  return lines
}

describe('read-only volume', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let hostDir: string
  let file: Buffer
  let dir: Buffer

  beforeAll(async () => {
    hostDir = makeTempDir('aegis-ro-')
    fs.writeFileSync(path.join(hostDir, 'fixed'), 'fixed contents')
    fs.mkdirSync(path.join(hostDir, 'sub'))
    fs.writeFileSync(path.join(hostDir, 'sub', 'inner'), 'inner contents')
    fs.mkdirSync(path.join(hostDir, 'empty'))
    mounted = await startMounted({ volumesYaml: hostPathVolumeYaml('frozen', hostDir, 'read-only'), mountPath: '/frozen' })
    nfs = mounted.nfs
    file = await nfs.lookupHandle(mounted.root, 'fixed')
    dir = await nfs.lookupHandle(mounted.root, 'sub')
  })
  afterAll(async () => mounted.stop())

  it('reading still works', async () => {
    expect((await nfs.readFile(file)).toString()).toBe('fixed contents')
  })

  it.each([
    ['SETATTR', () => nfs.setattr(file, { size: 0 })],
    ['WRITE', () => nfs.write(file, 0, Buffer.from('x'))],
    ['CREATE', () => nfs.create(mounted.root, 'new-file')],
    ['MKDIR', () => nfs.mkdir(mounted.root, 'new-dir')],
    ['SYMLINK', () => nfs.symlink(mounted.root, 'new-link', 'fixed')],
    ['REMOVE', () => nfs.remove(mounted.root, 'fixed')],
    ['RMDIR', () => nfs.rmdir(mounted.root, 'empty')],
    ['RENAME', () => nfs.rename(mounted.root, 'fixed', mounted.root, 'moved')],
    ['LINK', () => nfs.link(file, dir, 'alias')]
  ])('%s is ROFS', async (_name, change) => {
    const before = snapshot(hostDir)
    expect((await change()).status).toBe('ROFS')
    expect(snapshot(hostDir)).toEqual(before)
  })
})

describe('host symlinks', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let hostDir: string
  let outsideDir: string

  beforeAll(async () => {
    hostDir = makeTempDir('aegis-links-')
    outsideDir = makeTempDir('aegis-outside-')
    fs.writeFileSync(path.join(outsideDir, 'secret'), 'outside data')
    fs.symlinkSync(path.join(outsideDir, 'secret'), path.join(hostDir, 'to-secret'))
    fs.symlinkSync(path.join(outsideDir, 'planted'), path.join(hostDir, 'dangling'))
    fs.symlinkSync(outsideDir, path.join(hostDir, 'to-outside-dir'))
    mounted = await startMounted({ volumesYaml: hostPathVolumeYaml('linked', hostDir, 'read-write'), mountPath: '/linked' })
    nfs = mounted.nfs
  })
  afterAll(async () => mounted.stop())

  it('READ through a host symlink is refused', async () => {
    const link = await nfs.lookup(mounted.root, 'to-secret')
    expect(link.attributes?.type).toBe('LNK')
    const read = await nfs.read(link.handle!, 0, 100)
    expect(read.status).not.toBe('OK')
  })

  it('WRITE through a host symlink is refused', async () => {
    const link = await nfs.lookupHandle(mounted.root, 'to-secret')
    expect((await nfs.write(link, 0, Buffer.from('overwritten'))).status).not.toBe('OK')
    expect((await nfs.setattr(link, { size: 0 })).status).not.toBe('OK')
    expect(fs.readFileSync(path.join(outsideDir, 'secret'), 'utf8')).toBe('outside data')
  })

  it('CREATE over a dangling symlink is refused', async () => {
    expect((await nfs.create(mounted.root, 'dangling', { mode: 'unchecked' })).status).not.toBe('OK')
    expect((await nfs.create(mounted.root, 'dangling', { mode: 'guarded' })).status).not.toBe('OK')
    expect((await nfs.create(mounted.root, 'dangling', { mode: 'exclusive', verifier: Buffer.alloc(8, 1) })).status).not.toBe('OK')
    expect(fs.existsSync(path.join(outsideDir, 'planted'))).toBe(false)
  })

  it('LOOKUP through a directory symlink is NOTDIR', async () => {
    const link = await nfs.lookupHandle(mounted.root, 'to-outside-dir')
    expect((await nfs.lookup(link, 'secret')).status).toBe('NOTDIR')
    expect((await nfs.create(link, 'dropped', { mode: 'guarded' })).status).toBe('NOTDIR')
    expect(fs.existsSync(path.join(outsideDir, 'dropped'))).toBe(false)
  })

  it('symlink SETATTR times stay on link', async () => {
    const link = await nfs.lookupHandle(mounted.root, 'to-secret')
    const targetBefore = fs.statSync(path.join(outsideDir, 'secret')).mtimeMs
    const result = await nfs.setattr(link, { mtime: { sec: 1_000_000_000, nsec: 0 } })
    expect(result.status).toBe('OK')
    expect(fs.statSync(path.join(outsideDir, 'secret')).mtimeMs).toBe(targetBefore)
    expect(fs.lstatSync(path.join(hostDir, 'to-secret')).mtimeMs).toBe(1_000_000_000_000)
  })

  it('REMOVE host symlink keeps target', async () => {
    expect((await nfs.remove(mounted.root, 'to-outside-dir')).status).toBe('OK')
    expect(fs.readFileSync(path.join(outsideDir, 'secret'), 'utf8')).toBe('outside data')
  })
})

describe('restricted export', () => {
  it('old handle ACCES after restriction', async () => {
    const dataDir = makeTempDir()
    const open = localVolumeYaml('scratch') + localVolumeYaml('guarded')
    const first = await startMounted({ volumesYaml: open, dataDir, mountPath: '/guarded' })
    const file = await first.nfs.writeFile(first.root, 'kept', 'guarded data')
    await first.stop()

    const restricted = localVolumeYaml('scratch') + localVolumeYaml('guarded', '    allowed_clients: ["10.0.0.0/8"]\n')
    const node = await startTestNode({ volumesYaml: restricted, dataDir })
    const nfs = await Nfs3Client.connect(node.port)
    try {
      expect((await nfs.getattr(file)).status).toBe('ACCES')
      expect((await nfs.read(file, 0, 100)).status).toBe('ACCES')
      expect((await nfs.mnt('/guarded')).status).toBe('ACCES')
    } finally {
      nfs.close()
      await node.stop()
    }
  })
})
