// RENAME, LINK, SYMLINK and READLINK (RFC 1813, sections 3.3.5, 3.3.10, 3.3.14 and 3.3.15).

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import type { Nfs3Client } from '../helpers/nfs3.js'
import { localVolumeYaml } from '../helpers/node.js'

describe('rename', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let volumeDir: string
  let other: Buffer

  beforeAll(async () => {
    mounted = await startMounted({ volumesYaml: localVolumeYaml('scratch') + localVolumeYaml('other') })
    nfs = mounted.nfs
    volumeDir = path.join(mounted.node.dataDir, 'volumes', 'scratch')
    other = await nfs.mount('/other')
  })
  afterAll(async () => mounted.stop())

  it('rename over an existing file replaces it', async () => {
    const source = await nfs.writeFile(mounted.root, 'rename-source', 'source contents')
    await nfs.writeFile(mounted.root, 'rename-target', 'target contents that are longer')
    const sourceId = (await nfs.attributesOf(source)).fileid

    const result = await nfs.rename(mounted.root, 'rename-source', mounted.root, 'rename-target')
    expect(result.status).toBe('OK')
    expect((await nfs.lookup(mounted.root, 'rename-source')).status).toBe('NOENT')
    const target = await nfs.lookup(mounted.root, 'rename-target')
    expect(target.attributes?.fileid).toBe(sourceId)
    expect((await nfs.readFile(target.handle!)).toString()).toBe('source contents')
    expect(fs.readFileSync(path.join(volumeDir, 'rename-target'), 'utf8')).toBe('source contents')
    expect(fs.existsSync(path.join(volumeDir, 'rename-source'))).toBe(false)
  })

  it('replaced file handle is STALE', async () => {
    await nfs.writeFile(mounted.root, 'replacer', 'new')
    const replaced = await nfs.writeFile(mounted.root, 'replaced', 'old')
    expect((await nfs.rename(mounted.root, 'replacer', mounted.root, 'replaced')).status).toBe('OK')
    expect((await nfs.getattr(replaced)).status).toBe('STALE')
  })

  it('rename into another directory', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'destination')
    const file = await nfs.writeFile(mounted.root, 'mover', 'moving')
    const result = await nfs.rename(mounted.root, 'mover', dir, 'moved')
    expect(result.status).toBe('OK')
    expect(result.fromDirWcc.after?.type).toBe('DIR')
    expect(result.toDirWcc.after?.type).toBe('DIR')
    const moved = await nfs.lookup(dir, 'moved')
    expect(moved.handle?.equals(file)).toBe(true)
    expect(fs.readFileSync(path.join(volumeDir, 'destination', 'moved'), 'utf8')).toBe('moving')
  })

  it('directory into its own subdirectory is INVAL', async () => {
    const top = await nfs.mkdirHandle(mounted.root, 'loop-top')
    const sub = await nfs.mkdirHandle(top, 'sub')
    const result = await nfs.rename(mounted.root, 'loop-top', sub, 'inside')
    expect(result.status).toBe('INVAL')
    expect(fs.statSync(path.join(volumeDir, 'loop-top', 'sub')).isDirectory()).toBe(true)
  })

  it('directory into itself is INVAL', async () => {
    const top = await nfs.mkdirHandle(mounted.root, 'self-top')
    expect((await nfs.rename(mounted.root, 'self-top', top, 'me')).status).toBe('INVAL')
  })

  it('rename over a non-empty directory fails', async () => {
    await nfs.mkdirHandle(mounted.root, 'rename-dir-source')
    const target = await nfs.mkdirHandle(mounted.root, 'rename-dir-target')
    await nfs.writeFile(target, 'occupant', 'still here')
    const result = await nfs.rename(mounted.root, 'rename-dir-source', mounted.root, 'rename-dir-target')
    expect(['NOTEMPTY', 'EXIST']).toContain(result.status)
    expect(fs.readFileSync(path.join(volumeDir, 'rename-dir-target', 'occupant'), 'utf8')).toBe('still here')
    expect(fs.statSync(path.join(volumeDir, 'rename-dir-source')).isDirectory()).toBe(true)
  })

  it('rename over an empty directory works', async () => {
    const source = await nfs.mkdirHandle(mounted.root, 'dir-over-empty')
    await nfs.mkdirHandle(mounted.root, 'empty-target')
    expect((await nfs.rename(mounted.root, 'dir-over-empty', mounted.root, 'empty-target')).status).toBe('OK')
    expect((await nfs.lookup(mounted.root, 'empty-target')).handle?.equals(source)).toBe(true)
  })

  it('directory over a file is refused', async () => {
    await nfs.mkdirHandle(mounted.root, 'dir-over-file')
    await nfs.writeFile(mounted.root, 'file-under-dir', 'data')
    const result = await nfs.rename(mounted.root, 'dir-over-file', mounted.root, 'file-under-dir')
    expect(['NOTDIR', 'EXIST']).toContain(result.status)
    expect(fs.readFileSync(path.join(volumeDir, 'file-under-dir'), 'utf8')).toBe('data')
  })

  it('file over a directory is refused', async () => {
    await nfs.writeFile(mounted.root, 'file-over-dir', 'data')
    await nfs.mkdirHandle(mounted.root, 'dir-under-file')
    const result = await nfs.rename(mounted.root, 'file-over-dir', mounted.root, 'dir-under-file')
    expect(['ISDIR', 'EXIST']).toContain(result.status)
    expect(fs.statSync(path.join(volumeDir, 'dir-under-file')).isDirectory()).toBe(true)
  })

  it('rename onto same name is no-op', async () => {
    const file = await nfs.writeFile(mounted.root, 'same-name', 'unchanged')
    expect((await nfs.rename(mounted.root, 'same-name', mounted.root, 'same-name')).status).toBe('OK')
    expect((await nfs.readFile(file)).toString()).toBe('unchanged')
  })

  it('rename of a missing name is NOENT', async () => {
    expect((await nfs.rename(mounted.root, 'missing-source', mounted.root, 'anything')).status).toBe('NOENT')
  })

  it('hard links renamed onto each other stay', async () => {
    const file = await nfs.writeFile(mounted.root, 'twin-a', 'twins')
    expect((await nfs.link(file, mounted.root, 'twin-b')).status).toBe('OK')
    expect((await nfs.rename(mounted.root, 'twin-a', mounted.root, 'twin-b')).status).toBe('OK')
    expect((await nfs.lookup(mounted.root, 'twin-b')).status).toBe('OK')
    expect((await nfs.getattr(file)).status).toBe('OK')
  })

  it('rename across volumes is XDEV', async () => {
    await nfs.writeFile(mounted.root, 'cross-volume', 'stay')
    const result = await nfs.rename(mounted.root, 'cross-volume', other, 'arrived')
    expect(result.status).toBe('XDEV')
    expect(fs.readFileSync(path.join(volumeDir, 'cross-volume'), 'utf8')).toBe('stay')
    expect(fs.existsSync(path.join(mounted.node.dataDir, 'volumes', 'other', 'arrived'))).toBe(false)
  })

  it('rename to dotdot is refused', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'dotdot-dir')
    await nfs.writeFile(dir, 'escapee', 'x')
    expect((await nfs.rename(dir, 'escapee', dir, '..')).status).not.toBe('OK')
    expect(fs.readFileSync(path.join(volumeDir, 'dotdot-dir', 'escapee'), 'utf8')).toBe('x')
  })
})

describe('link', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let other: Buffer

  beforeAll(async () => {
    mounted = await startMounted({ volumesYaml: localVolumeYaml('scratch') + localVolumeYaml('other') })
    nfs = mounted.nfs
    other = await nfs.mount('/other')
  })
  afterAll(async () => mounted.stop())

  it('LINK adds a second name', async () => {
    const file = await nfs.writeFile(mounted.root, 'original', 'shared data')
    const result = await nfs.link(file, mounted.root, 'second-name')
    expect(result.status).toBe('OK')
    expect(result.attributes?.nlink).toBe(2)
    expect(result.dirWcc.after?.type).toBe('DIR')

    const second = await nfs.lookup(mounted.root, 'second-name')
    expect(second.attributes?.fileid).toBe((await nfs.attributesOf(file)).fileid)
    expect(second.attributes?.nlink).toBe(2)
    expect((await nfs.readFile(second.handle!)).toString()).toBe('shared data')
  })

  it('handle survives removal of first name', async () => {
    const file = await nfs.writeFile(mounted.root, 'first-of-two', 'survivor')
    expect((await nfs.link(file, mounted.root, 'second-of-two')).status).toBe('OK')
    expect((await nfs.remove(mounted.root, 'first-of-two')).status).toBe('OK')
    const attributes = await nfs.getattr(file)
    expect(attributes.status).toBe('OK')
    expect(attributes.attributes?.nlink).toBe(1)
    expect((await nfs.readFile(file)).toString()).toBe('survivor')
  })

  it('LINK to an existing name is EXIST', async () => {
    const file = await nfs.writeFile(mounted.root, 'link-source', 'a')
    await nfs.writeFile(mounted.root, 'link-taken', 'b')
    expect((await nfs.link(file, mounted.root, 'link-taken')).status).toBe('EXIST')
  })

  it('LINK of a directory is refused', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'link-dir')
    const result = await nfs.link(dir, mounted.root, 'dir-alias')
    expect(result.status).not.toBe('OK')
    expect((await nfs.lookup(mounted.root, 'dir-alias')).status).toBe('NOENT')
  })

  it('LINK across volumes is XDEV', async () => {
    const file = await nfs.writeFile(mounted.root, 'cross-link', 'x')
    expect((await nfs.link(file, other, 'alias')).status).toBe('XDEV')
  })
})

describe('symlink and readlink', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let volumeDir: string

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
    volumeDir = path.join(mounted.node.dataDir, 'volumes', 'scratch')
  })
  afterAll(async () => mounted.stop())

  it.each([
    ['relative', 'some/relative/target'],
    ['absolute', '/absolute/path/elsewhere'],
    ['escaping', '../../../../etc/passwd'],
    ['unicode', 'ünïcödé/目标 with spaces'],
    ['long', 'x'.repeat(1000)]
  ])('round trip of %s target', async (label, target) => {
    const created = await nfs.symlink(mounted.root, `link-${label}`, target)
    expect(created.status).toBe('OK')
    expect(created.attributes?.type).toBe('LNK')
    const read = await nfs.readlink(created.handle!)
    expect(read.status).toBe('OK')
    expect(read.target?.toString('utf8')).toBe(target)
    expect(fs.readlinkSync(path.join(volumeDir, `link-${label}`))).toBe(target)
  })

  it('symlink size is target length', async () => {
    const created = await nfs.symlink(mounted.root, 'sized-link', 'twelve-bytes')
    expect((await nfs.attributesOf(created.handle!)).size).toBe(12)
  })

  it('LOOKUP does not follow a symlink', async () => {
    await nfs.symlink(mounted.root, 'to-etc', '/etc')
    const looked = await nfs.lookup(mounted.root, 'to-etc')
    expect(looked.attributes?.type).toBe('LNK')
    expect((await nfs.lookup(looked.handle!, 'passwd')).status).toBe('NOTDIR')
  })

  it('READLINK of a regular file is INVAL', async () => {
    const file = await nfs.writeFile(mounted.root, 'not-a-link', 'x')
    expect((await nfs.readlink(file)).status).toBe('INVAL')
  })

  it('READLINK of a directory is INVAL', async () => {
    expect((await nfs.readlink(mounted.root)).status).toBe('INVAL')
  })

  it('SYMLINK over an existing name is EXIST', async () => {
    await nfs.writeFile(mounted.root, 'occupied', 'x')
    expect((await nfs.symlink(mounted.root, 'occupied', 'elsewhere')).status).toBe('EXIST')
    expect(fs.readFileSync(path.join(volumeDir, 'occupied'), 'utf8')).toBe('x')
  })

  it('READ through a symlink handle is refused', async () => {
    await nfs.writeFile(mounted.root, 'real-file', 'real')
    const link = await nfs.symlink(mounted.root, 'via-link', 'real-file')
    expect((await nfs.read(link.handle!, 0, 100)).status).not.toBe('OK')
  })
})
