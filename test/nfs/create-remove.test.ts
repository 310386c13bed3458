// LOOKUP, CREATE, MKDIR, MKNOD, REMOVE and RMDIR (RFC 1813, sections 3.3.3, 3.3.8, 3.3.9,
// 3.3.11-3.3.13).

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import type { Nfs3Client } from '../helpers/nfs3.js'

describe('create', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let volumeDir: string

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
    volumeDir = path.join(mounted.node.dataDir, 'volumes', 'scratch')
  })
  afterAll(async () => mounted.stop())

  it('guarded create of a new name', async () => {
    const result = await nfs.create(mounted.root, 'guarded-new', { mode: 'guarded', attributes: { mode: 0o640 } })
    expect(result.status).toBe('OK')
    expect(result.handle).toBeInstanceOf(Buffer)
    expect(result.attributes?.type).toBe('REG')
    expect(result.attributes?.mode.toString(8)).toBe('640')
    expect(result.attributes?.size).toBe(0)
    expect(result.dirWcc.after?.type).toBe('DIR')
    expect(fs.statSync(path.join(volumeDir, 'guarded-new')).isFile()).toBe(true)
  })

  it('CREATE mode is applied exactly', async () => {
    const result = await nfs.create(mounted.root, 'group-writable', { mode: 'guarded', attributes: { mode: 0o666 } })
    expect(result.status).toBe('OK')
    expect(result.attributes?.mode.toString(8)).toBe('666')
    expect((fs.statSync(path.join(volumeDir, 'group-writable')).mode & 0o777).toString(8)).toBe('666')
  })

  it('unchecked over existing keeps it', async () => {
    const handle = await nfs.writeFile(mounted.root, 'unchecked-existing', 'original data')
    const before = await nfs.attributesOf(handle)
    const result = await nfs.create(mounted.root, 'unchecked-existing', { mode: 'unchecked' })
    expect(result.status).toBe('OK')
    expect(result.attributes?.fileid).toBe(before.fileid)
    expect((await nfs.readFile(handle)).toString()).toBe('original data')
  })

  it('unchecked with size 0 truncates', async () => {
    const handle = await nfs.writeFile(mounted.root, 'unchecked-truncate', 'some data')
    const result = await nfs.create(mounted.root, 'unchecked-truncate', { mode: 'unchecked', attributes: { size: 0 } })
    expect(result.status).toBe('OK')
    expect((await nfs.attributesOf(handle)).size).toBe(0)
  })

  it('guarded over existing is EXIST', async () => {
    const handle = await nfs.writeFile(mounted.root, 'guarded-existing', 'keep me')
    const result = await nfs.create(mounted.root, 'guarded-existing', { mode: 'guarded', attributes: { size: 0 } })
    expect(result.status).toBe('EXIST')
    expect((await nfs.readFile(handle)).toString()).toBe('keep me')
  })

  it('exclusive retransmission returns same file', async () => {
    const verifier = Buffer.from('0102030405060708', 'hex')
    const first = await nfs.create(mounted.root, 'exclusive', { mode: 'exclusive', verifier })
    const again = await nfs.create(mounted.root, 'exclusive', { mode: 'exclusive', verifier })
    expect(first.status).toBe('OK')
    expect(again.status).toBe('OK')
    expect(again.attributes?.fileid).toBe(first.attributes?.fileid)
    expect(again.handle?.equals(first.handle!)).toBe(true)
  })

  it('exclusive with another verifier is EXIST', async () => {
    const first = await nfs.create(mounted.root, 'exclusive-two', { mode: 'exclusive', verifier: Buffer.from('aaaaaaaa') })
    const second = await nfs.create(mounted.root, 'exclusive-two', { mode: 'exclusive', verifier: Buffer.from('bbbbbbbb') })
    expect(first.status).toBe('OK')
    expect(second.status).toBe('EXIST')
  })

  it('exclusive with high-bit verifier', async () => {
    const verifier = Buffer.from('deadbeefcafebabe', 'hex')
    const first = await nfs.create(mounted.root, 'exclusive-high', { mode: 'exclusive', verifier })
    const again = await nfs.create(mounted.root, 'exclusive-high', { mode: 'exclusive', verifier })
    expect(first.status).toBe('OK')
    expect(again.status).toBe('OK')
    expect(again.attributes?.fileid).toBe(first.attributes?.fileid)
  })

  it('exclusive over a plain file is EXIST', async () => {
    await nfs.writeFile(mounted.root, 'exclusive-plain', 'x')
    const result = await nfs.create(mounted.root, 'exclusive-plain', { mode: 'exclusive', verifier: Buffer.alloc(8) })
    expect(result.status).toBe('EXIST')
  })

  it('exclusive file is writable after SETATTR', async () => {
    const created = await nfs.create(mounted.root, 'exclusive-then-write', { mode: 'exclusive', verifier: Buffer.from('12345678') })
    const handle = created.handle!
    expect((await nfs.setattr(handle, { mode: 0o644, mtime: 'server', atime: 'server' })).status).toBe('OK')
    expect((await nfs.write(handle, 0, Buffer.from('written'))).status).toBe('OK')
    expect((await nfs.readFile(handle)).toString()).toBe('written')
  })

  it('name with a slash is refused', async () => {
    await nfs.mkdirHandle(mounted.root, 'slash-parent')
    const result = await nfs.create(mounted.root, 'slash-parent/child', { mode: 'guarded' })
    expect(result.status).not.toBe('OK')
    expect(fs.existsSync(path.join(volumeDir, 'slash-parent', 'child'))).toBe(false)
  })

  it.each(['.', '..', ''])('name %j is refused', async (name) => {
    const result = await nfs.create(mounted.root, name, { mode: 'guarded' })
    expect(result.status).not.toBe('OK')
  })

  it('256-byte name is NAMETOOLONG', async () => {
    const result = await nfs.create(mounted.root, 'n'.repeat(256), { mode: 'guarded' })
    expect(result.status).toBe('NAMETOOLONG')
  })

  it('255-byte name is accepted', async () => {
    const result = await nfs.create(mounted.root, 'm'.repeat(255), { mode: 'guarded' })
    expect(result.status).toBe('OK')
  })

  it('CREATE in a file is NOTDIR', async () => {
    const file = await nfs.writeFile(mounted.root, 'not-a-dir')
    const result = await nfs.create(file, 'child', { mode: 'guarded' })
    expect(result.status).toBe('NOTDIR')
  })

  it('failure body decodes as wcc_data', async () => {
    await nfs.writeFile(mounted.root, 'wcc-on-failure')
    const result = await nfs.create(mounted.root, 'wcc-on-failure', { mode: 'guarded' })
    expect(result.status).toBe('EXIST')
    expect(result.handle).toBeNull()
  })
})

describe('mkdir and mknod', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
  })
  afterAll(async () => mounted.stop())

  it('MKDIR returns a directory handle', async () => {
    const result = await nfs.mkdir(mounted.root, 'made', { mode: 0o750 })
    expect(result.status).toBe('OK')
    expect(result.attributes?.type).toBe('DIR')
    expect(result.attributes?.mode.toString(8)).toBe('750')
    expect((await nfs.attributesOf(result.handle!)).fileid).toBe(result.attributes?.fileid)
  })

  it('MKDIR mode is applied exactly', async () => {
    const result = await nfs.mkdir(mounted.root, 'open-dir', { mode: 0o777 })
    expect(result.status).toBe('OK')
    expect(result.attributes?.mode.toString(8)).toBe('777')
    expect((await nfs.attributesOf(result.handle!)).mode.toString(8)).toBe('777')
  })

  it('MKDIR of an existing name is EXIST', async () => {
    await nfs.mkdirHandle(mounted.root, 'made-twice')
    expect((await nfs.mkdir(mounted.root, 'made-twice')).status).toBe('EXIST')
  })

  it('MKDIR updates parent nlink', async () => {
    const parent = await nfs.mkdirHandle(mounted.root, 'parent-nlink')
    const before = (await nfs.attributesOf(parent)).nlink
    await nfs.mkdirHandle(parent, 'child')
    expect((await nfs.attributesOf(parent)).nlink).toBe(before + 1)
  })

  it('MKNOD FIFO is refused cleanly', async () => {
    const result = await nfs.mknodFifo(mounted.root, 'fifo')
    expect(['NOTSUPP', 'OK']).toContain(result.status)
    if (result.status === 'NOTSUPP') expect((await nfs.lookup(mounted.root, 'fifo')).status).toBe('NOENT')
  })

  it('LOOKUP of a missing name is NOENT', async () => {
    const result = await nfs.lookup(mounted.root, 'no-such-name')
    expect(result.status).toBe('NOENT')
    expect(result.handle).toBeNull()
  })

  it('LOOKUP in a file is NOTDIR', async () => {
    const file = await nfs.writeFile(mounted.root, 'lookup-file')
    expect((await nfs.lookup(file, 'x')).status).toBe('NOTDIR')
  })

  it('LOOKUP returns object and directory attributes', async () => {
    const handle = await nfs.writeFile(mounted.root, 'lookup-attrs', 'abc')
    const result = await nfs.lookup(mounted.root, 'lookup-attrs')
    expect(result.handle?.equals(handle)).toBe(true)
    expect(result.attributes?.size).toBe(3)
    expect(result.dirAttributes?.type).toBe('DIR')
  })
})

describe('remove and rmdir', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let volumeDir: string

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
    volumeDir = path.join(mounted.node.dataDir, 'volumes', 'scratch')
  })
  afterAll(async () => mounted.stop())

  it('REMOVE deletes the file', async () => {
    await nfs.writeFile(mounted.root, 'doomed', 'x')
    const result = await nfs.remove(mounted.root, 'doomed')
    expect(result.status).toBe('OK')
    expect(result.wcc.after?.type).toBe('DIR')
    expect((await nfs.lookup(mounted.root, 'doomed')).status).toBe('NOENT')
    expect(fs.existsSync(path.join(volumeDir, 'doomed'))).toBe(false)
  })

  it('REMOVE of a missing name is NOENT', async () => {
    expect((await nfs.remove(mounted.root, 'never-existed')).status).toBe('NOENT')
  })

  it('REMOVE of a directory is refused', async () => {
    await nfs.mkdirHandle(mounted.root, 'remove-dir')
    const result = await nfs.remove(mounted.root, 'remove-dir')
    expect(result.status).not.toBe('OK')
    expect(fs.statSync(path.join(volumeDir, 'remove-dir')).isDirectory()).toBe(true)
  })

  it('REMOVE of a symlink keeps its target', async () => {
    await nfs.writeFile(mounted.root, 'link-target', 'target data')
    expect((await nfs.symlink(mounted.root, 'to-target', 'link-target')).status).toBe('OK')
    expect((await nfs.remove(mounted.root, 'to-target')).status).toBe('OK')
    expect(fs.readFileSync(path.join(volumeDir, 'link-target'), 'utf8')).toBe('target data')
  })

  it('RMDIR of a non-empty directory is NOTEMPTY', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'full')
    await nfs.writeFile(dir, 'inside', 'precious')
    await nfs.mkdirHandle(dir, 'nested')
    const result = await nfs.rmdir(mounted.root, 'full')
    expect(result.status).toBe('NOTEMPTY')

    const inside = await nfs.lookupHandle(mounted.root, 'full/inside')
    expect((await nfs.readFile(inside)).toString()).toBe('precious')
    expect((await nfs.lookup(dir, 'nested')).status).toBe('OK')
    expect(fs.readFileSync(path.join(volumeDir, 'full', 'inside'), 'utf8')).toBe('precious')
    expect(fs.statSync(path.join(volumeDir, 'full', 'nested')).isDirectory()).toBe(true)
  })

  it('RMDIR of a file is NOTDIR', async () => {
    await nfs.writeFile(mounted.root, 'plain-file', 'data')
    expect((await nfs.rmdir(mounted.root, 'plain-file')).status).toBe('NOTDIR')
    expect(fs.readFileSync(path.join(volumeDir, 'plain-file'), 'utf8')).toBe('data')
  })

  it('RMDIR of a missing name is NOENT', async () => {
    expect((await nfs.rmdir(mounted.root, 'no-dir')).status).toBe('NOENT')
  })

  it('RMDIR removes an empty directory', async () => {
    await nfs.mkdirHandle(mounted.root, 'empty-dir')
    expect((await nfs.rmdir(mounted.root, 'empty-dir')).status).toBe('OK')
    expect(fs.existsSync(path.join(volumeDir, 'empty-dir'))).toBe(false)
  })

  it('RMDIR of dot is refused', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'dot-parent')
    expect((await nfs.rmdir(dir, '.')).status).not.toBe('OK')
    expect((await nfs.rmdir(dir, '..')).status).not.toBe('OK')
    expect(fs.statSync(path.join(volumeDir, 'dot-parent')).isDirectory()).toBe(true)
  })

  it('removed file handle is STALE', async () => {
    const handle = await nfs.writeFile(mounted.root, 'gone-soon', 'x')
    await nfs.remove(mounted.root, 'gone-soon')
    expect((await nfs.getattr(handle)).status).toBe('STALE')
  })
})
