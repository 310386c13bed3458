// The namespace: CREATE in its three modes, MKDIR, REMOVE, RMDIR and RENAME.

import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { describe, expect } from 'vitest'
import { FsalError } from '../../../src/fsal/errors.js'
import type { DefineCase } from '../case.js'
import { expectBytes, expectFsalError, expectFsalErrorOf, pattern, type FsalHarness } from '../harness.js'

const VERIFIER = Buffer.from('0102030405060708', 'hex')
const OTHER_VERIFIER = Buffer.from('0102030405060709', 'hex')

async function expectAbsent(fs: FsalHarness, dir: Buffer, name: string): Promise<void> {
  await expectFsalError(fs.lookup(dir, name), 'NOENT')
}

/** Asserts that `name` in `dir` is a file with exactly `data`. */
async function expectFile(fs: FsalHarness, dir: Buffer, name: string, data: Buffer): Promise<void> {
  const entry = await fs.lookup(dir, name)
  expect(entry.attributes.type, `type of ${name}`).toBe('file')
  expectBytes(await fs.readAll(entry.handle), data, `content of ${name}`)
}

export function namespaceCases(contractCase: DefineCase): void {
  describe('create', () => {
    contractCase('unchecked create makes an empty file', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')

      expect(file.attributes.type, 'type').toBe('file')
      expect(file.attributes.sizeBytes, 'size').toBe(0)
      expect((await fs.lookup(fs.root, 'file')).attributes.fileId, 'fileid found by LOOKUP').toBe(file.attributes.fileId)
    })

    contractCase('unchecked create of an existing file keeps it', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const first = await fs.createWith(fs.root, 'file', data)

      const second = await fs.create(fs.root, 'file', { how: 'unchecked' })

      expect(second.attributes.fileId, 'fileid').toBe(first.attributes.fileId)
      await expectFile(fs, fs.root, 'file', data)
    })

    contractCase('unchecked create with size 0 truncates', {}, async ({ fs }) => {
      const first = await fs.createWith(fs.root, 'file', pattern(1_000, 1))

      const second = await fs.create(fs.root, 'file', { how: 'unchecked', attributes: { sizeBytes: 0 } })

      expect(second.attributes.fileId, 'fileid').toBe(first.attributes.fileId)
      expect(second.attributes.sizeBytes, 'size in the CREATE reply').toBe(0)
      await expectFile(fs, fs.root, 'file', Buffer.alloc(0))
    })

    contractCase('guarded create of an existing name fails with EXIST', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      await fs.createWith(fs.root, 'file', data)
      await fs.mkdir(fs.root, 'dir')

      await expectFsalError(fs.create(fs.root, 'file', { how: 'guarded' }), 'EXIST')
      await expectFsalError(fs.create(fs.root, 'dir', { how: 'guarded' }), 'EXIST')

      await expectFile(fs, fs.root, 'file', data)
      expect((await fs.lookup(fs.root, 'dir')).attributes.type, 'type of dir').toBe('dir')
    })

    contractCase('concurrent guarded creates of one name: one succeeds', {}, async ({ fs }) => {
      const results = await Promise.allSettled([0, 1, 2, 3].map(() => fs.create(fs.root, 'file', { how: 'guarded' })))

      expect(results.filter((result) => result.status === 'fulfilled').length, 'creates that succeeded').toBe(1)
      for (const result of results) {
        if (result.status === 'rejected') expect((result.reason as FsalError).code, 'code of the others').toBe('EXIST')
      }
    })

    contractCase('concurrent mkdirs of one name: one succeeds', {}, async ({ fs }) => {
      const results = await Promise.allSettled([0, 1, 2, 3].map(() => fs.mkdir(fs.root, 'dir')))

      expect(results.filter((result) => result.status === 'fulfilled').length, 'mkdirs that succeeded').toBe(1)
      for (const result of results) {
        if (result.status === 'rejected') expect((result.reason as FsalError).code, 'code of the others').toBe('EXIST')
      }
    })

    contractCase('exclusive create and its retransmission', {}, async ({ fs }) => {
      const created = await fs.createExclusive(fs.root, 'file', VERIFIER)

      const retransmitted = await fs.createExclusive(fs.root, 'file', VERIFIER)

      expect(created.attributes.type, 'type').toBe('file')
      expect(retransmitted.attributes.fileId, 'fileid of the retransmission').toBe(created.attributes.fileId)
      expect(retransmitted.attributes.sizeBytes, 'size').toBe(0)
    })

    contractCase('exclusive create with another verifier fails with EXIST', {}, async ({ fs }) => {
      const created = await fs.createExclusive(fs.root, 'file', VERIFIER)

      await expectFsalError(fs.createExclusive(fs.root, 'file', OTHER_VERIFIER), 'EXIST')

      expect((await fs.lookup(fs.root, 'file')).attributes.fileId, 'fileid after the rejected create').toBe(created.attributes.fileId)
    })

    contractCase('exclusive create with every verifier bit set', {}, async ({ fs }) => {
      const verifier = Buffer.alloc(8, 0xff)
      const created = await fs.createExclusive(fs.root, 'file', verifier)

      const retransmitted = await fs.createExclusive(fs.root, 'file', verifier)

      expect(retransmitted.attributes.fileId, 'fileid of the retransmission').toBe(created.attributes.fileId)
    })

    contractCase('exclusive create over plain file fails', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      await fs.createWith(fs.root, 'file', data)

      await expectFsalError(fs.createExclusive(fs.root, 'file', VERIFIER), 'EXIST')

      await expectFile(fs, fs.root, 'file', data)
    })

    contractCase('create inside a file fails with NOTDIR', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')

      await expectFsalError(fs.create(file.handle, 'inner'), 'NOTDIR')
    })
  })

  describe('mkdir', () => {
    contractCase('mkdir makes an empty directory', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')

      expect(dir.attributes.type, 'type').toBe('dir')
      expect((await fs.lookup(fs.root, 'dir')).attributes.fileId, 'fileid found by LOOKUP').toBe(dir.attributes.fileId)
      expect(await fs.list(dir.handle), 'entries of the new directory').toEqual([])
      expect(await fs.list(fs.root), 'entries of the root').toEqual(['dir'])
    })

    contractCase('nested directories', {}, async ({ fs }) => {
      const a = await fs.mkdir(fs.root, 'a')
      const b = await fs.mkdir(a.handle, 'b')
      const c = await fs.mkdir(b.handle, 'c')
      const data = pattern(500, 1)
      await fs.createWith(c.handle, 'file', data)

      const found = await fs.lookupPath('a', 'b', 'c', 'file')

      expectBytes(await fs.readAll(found.handle), data, 'content of a/b/c/file')
      expect(await fs.list(a.handle), 'entries of a').toEqual(['b'])
      expect(await fs.list(b.handle), 'entries of a/b').toEqual(['c'])
    })

    contractCase('mkdir of an existing name fails with EXIST', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')
      await fs.createWith(fs.root, 'file', pattern(10, 1))

      await expectFsalError(fs.mkdir(fs.root, 'dir'), 'EXIST')
      await expectFsalError(fs.mkdir(fs.root, 'file'), 'EXIST')

      expect((await fs.lookup(fs.root, 'dir')).attributes.fileId, 'fileid of dir').toBe(dir.attributes.fileId)
      expect((await fs.lookup(fs.root, 'file')).attributes.type, 'type of file').toBe('file')
    })
  })

  describe('remove and rmdir', () => {
    contractCase('remove deletes a file', {}, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(1_000, 1))
      await fs.createWith(fs.root, 'other', pattern(10, 2))

      const removed = await fs.remove(fs.root, 'file')

      expect(removed.fileId, 'fileid of the removed file').toBe(file.attributes.fileId)
      expect(removed.nlink, 'names left').toBe(0)
      await expectAbsent(fs, fs.root, 'file')
      expect(await fs.list(fs.root), 'entries after the removal').toEqual(['other'])
      await expectFsalError(fs.getattr(file.handle), 'STALE')
    })

    contractCase('stale handle never reaches successor', {}, async ({ fs }) => {
      const removed = await fs.createWith(fs.root, 'file', pattern(100, 1))
      await fs.remove(fs.root, 'file')

      // Created under the same name, and on most file systems with the inode number just freed.
      const successor = await fs.createWith(fs.root, 'file', pattern(100, 2))

      await expectFsalError(fs.getattr(removed.handle), 'STALE')
      await expectFsalError(fs.read(removed.handle, 0, 100), 'STALE')
      expectBytes(await fs.readAll(successor.handle), pattern(100, 2), 'content of the new file')
    })

    contractCase('remove of a missing name fails with NOENT', {}, async ({ fs }) => {
      await expectFsalError(fs.remove(fs.root, 'missing'), 'NOENT')
    })

    contractCase('remove of a directory fails with ISDIR', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')

      await expectFsalError(fs.remove(fs.root, 'dir'), 'ISDIR')

      expect((await fs.lookup(fs.root, 'dir')).attributes.fileId, 'fileid of dir').toBe(dir.attributes.fileId)
    })

    contractCase('rmdir removes an empty directory', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')

      const removed = await fs.rmdir(fs.root, 'dir')

      expect(removed.fileId, 'fileid of the removed directory').toBe(dir.attributes.fileId)
      await expectAbsent(fs, fs.root, 'dir')
      expect(await fs.list(fs.root), 'entries after the removal').toEqual([])
      await expectFsalError(fs.getattr(dir.handle), 'STALE')
    })

    contractCase('rmdir of a non-empty directory fails with NOTEMPTY', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')
      const data = pattern(1_000, 1)
      await fs.createWith(dir.handle, 'file', data)
      const sub = await fs.mkdir(dir.handle, 'sub')
      await fs.createWith(sub.handle, 'deep', data)

      await expectFsalError(fs.rmdir(fs.root, 'dir'), 'NOTEMPTY')
      await expectFsalError(fs.rmdir(dir.handle, 'sub'), 'NOTEMPTY')

      expect((await fs.lookup(fs.root, 'dir')).attributes.fileId, 'fileid of dir').toBe(dir.attributes.fileId)
      expect(await fs.list(dir.handle), 'entries of dir').toEqual(['file', 'sub'])
      expect(await fs.list(sub.handle), 'entries of dir/sub').toEqual(['deep'])
      await expectFile(fs, dir.handle, 'file', data)
      await expectFile(fs, sub.handle, 'deep', data)
    })

    contractCase('rmdir of a file fails with NOTDIR', {}, async ({ fs }) => {
      const data = pattern(100, 1)
      await fs.createWith(fs.root, 'file', data)

      await expectFsalError(fs.rmdir(fs.root, 'file'), 'NOTDIR')

      await expectFile(fs, fs.root, 'file', data)
    })

    contractCase('rmdir of a missing name fails with NOENT', {}, async ({ fs }) => {
      await expectFsalError(fs.rmdir(fs.root, 'missing'), 'NOENT')
    })
  })

  describe('rename', () => {
    contractCase('rename a file in its directory', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const file = await fs.createWith(fs.root, 'old', data)

      const replaced = await fs.rename(fs.root, 'old', fs.root, 'new')

      expect(replaced, 'replaced object').toBeNull()
      await expectAbsent(fs, fs.root, 'old')
      await expectFile(fs, fs.root, 'new', data)
      expect((await fs.lookup(fs.root, 'new')).attributes.fileId, 'fileid after the rename').toBe(file.attributes.fileId)
      expectBytes(await fs.readAll(file.handle), data, 'content through the handle from before the rename')
      expect(await fs.list(fs.root), 'entries after the rename').toEqual(['new'])
    })

    contractCase('rename a file to another directory', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const from = await fs.mkdir(fs.root, 'from')
      const to = await fs.mkdir(fs.root, 'to')
      const file = await fs.createWith(from.handle, 'file', data)

      await fs.rename(from.handle, 'file', to.handle, 'moved')

      expect(await fs.list(from.handle), 'entries of the source directory').toEqual([])
      expect(await fs.list(to.handle), 'entries of the target directory').toEqual(['moved'])
      await expectFile(fs, to.handle, 'moved', data)
      expectBytes(await fs.readAll(file.handle), data, 'content through the handle from before the rename')
    })

    contractCase('rename over an existing file replaces it', {}, async ({ fs }) => {
      const source = pattern(1_000, 1)
      const moved = await fs.createWith(fs.root, 'source', source)
      const target = await fs.createWith(fs.root, 'target', pattern(3_000, 2))

      const replaced = await fs.rename(fs.root, 'source', fs.root, 'target')

      expect(replaced?.fileId, 'fileid of the replaced file').toBe(target.attributes.fileId)
      expect(replaced?.nlink, 'names the replaced file has left').toBe(0)
      await expectAbsent(fs, fs.root, 'source')
      await expectFile(fs, fs.root, 'target', source)
      expect((await fs.lookup(fs.root, 'target')).attributes.fileId, 'fileid now named target').toBe(moved.attributes.fileId)
      expect(await fs.list(fs.root), 'entries after the rename').toEqual(['target'])
      await expectFsalError(fs.getattr(target.handle), 'STALE')
    })

    contractCase('rename over a file is atomic for readers', {}, async ({ fs }) => {
      const versionBytes = 4_096
      const versions = 40
      const version = (number: number): Buffer => {
        const data = pattern(versionBytes, number)
        data.writeUInt32BE(number, 0)
        return data
      }
      await fs.createWith(fs.root, 'target', version(0))
      const failures: string[] = []
      let renaming = true
      let reads = 0

      const reader = async (): Promise<void> => {
        while ((renaming || reads === 0) && failures.length === 0) {
          reads++
          // Each iteration yields to the event loop, so that a reader whose calls fail at once cannot starve the renames.
          await yieldToEventLoop()
          try {
            const entry = await fs.lookup(fs.root, 'target')
            const data = await fs.readAll(entry.handle)
            const number = data.length === versionBytes ? data.readUInt32BE(0) : -1
            if (number < 0 || number > versions || !data.equals(version(number))) failures.push(`read ${data.length} bytes that are no whole version`)
          } catch (error) {
            // The file found by LOOKUP can be replaced before the READ; a client then looks it up again.
            if (error instanceof FsalError && error.code === 'STALE') continue
            failures.push(String(error))
          }
        }
      }
      const reading = reader()
      try {
        for (let number = 1; number <= versions; number++) {
          await fs.createWith(fs.root, 'incoming', version(number))
          await fs.rename(fs.root, 'incoming', fs.root, 'target')
        }
      } finally {
        renaming = false
        await reading
      }

      expect(failures, 'reads that saw no target or a partial version').toEqual([])
      await expectFile(fs, fs.root, 'target', version(versions))
    })

    contractCase('rename a directory with its contents', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const dir = await fs.mkdir(fs.root, 'dir')
      const sub = await fs.mkdir(dir.handle, 'sub')
      const file = await fs.createWith(sub.handle, 'file', data)
      const parent = await fs.mkdir(fs.root, 'parent')

      await fs.rename(fs.root, 'dir', parent.handle, 'renamed')

      await expectAbsent(fs, fs.root, 'dir')
      expect(await fs.list(fs.root), 'entries of the root').toEqual(['parent'])
      const found = await fs.lookupPath('parent', 'renamed', 'sub', 'file')
      expect(found.attributes.fileId, 'fileid of the file below the renamed directory').toBe(file.attributes.fileId)
      expectBytes(await fs.readAll(found.handle), data, 'content found by the new path')
      expectBytes(await fs.readAll(file.handle), data, 'content through the handle from before the rename')
      expect((await fs.getattr(dir.handle)).fileId, 'directory handle from before the rename').toBe(dir.attributes.fileId)
    })

    contractCase('rename a directory into itself fails with INVAL', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')
      const sub = await fs.mkdir(dir.handle, 'sub')
      await fs.createWith(sub.handle, 'file', pattern(10, 1))

      await expectFsalError(fs.rename(fs.root, 'dir', dir.handle, 'inside'), 'INVAL')
      await expectFsalError(fs.rename(fs.root, 'dir', sub.handle, 'deeper'), 'INVAL')

      expect(await fs.list(fs.root), 'entries of the root').toEqual(['dir'])
      expect(await fs.list(dir.handle), 'entries of dir').toEqual(['sub'])
      expect(await fs.list(sub.handle), 'entries of dir/sub').toEqual(['file'])
    })

    contractCase('rename a directory over an empty directory', {}, async ({ fs }) => {
      const source = await fs.mkdir(fs.root, 'source')
      await fs.createWith(source.handle, 'file', pattern(10, 1))
      const target = await fs.mkdir(fs.root, 'target')

      const replaced = await fs.rename(fs.root, 'source', fs.root, 'target')

      expect(replaced?.fileId, 'fileid of the replaced directory').toBe(target.attributes.fileId)
      expect(await fs.list(fs.root), 'entries of the root').toEqual(['target'])
      expect((await fs.lookup(fs.root, 'target')).attributes.fileId, 'fileid now named target').toBe(source.attributes.fileId)
      expect(await fs.list(source.handle), 'entries of the moved directory').toEqual(['file'])
      await expectFsalError(fs.getattr(target.handle), 'STALE')
    })

    contractCase('rename over a non-empty directory fails', {}, async ({ fs }) => {
      const source = await fs.mkdir(fs.root, 'source')
      const target = await fs.mkdir(fs.root, 'target')
      await fs.createWith(target.handle, 'kept', pattern(10, 1))

      // RFC 1813, section 3.3.14 names EXIST. A server passing on the errno of rename(2) sends NOTEMPTY.
      await expectFsalErrorOf(fs.rename(fs.root, 'source', fs.root, 'target'), ['EXIST', 'NOTEMPTY'])

      expect((await fs.lookup(fs.root, 'source')).attributes.fileId, 'fileid of source').toBe(source.attributes.fileId)
      expect((await fs.lookup(fs.root, 'target')).attributes.fileId, 'fileid of target').toBe(target.attributes.fileId)
      expect(await fs.list(target.handle), 'entries of target').toEqual(['kept'])
    })

    contractCase('rename between a file and a directory fails', {}, async ({ fs }) => {
      const data = pattern(100, 1)
      await fs.createWith(fs.root, 'file', data)
      const dir = await fs.mkdir(fs.root, 'dir')
      await fs.createWith(dir.handle, 'inner', data)

      // RFC 1813, section 3.3.14 names EXIST. A server passing on the errno of rename(2) sends ISDIR or NOTDIR.
      await expectFsalErrorOf(fs.rename(fs.root, 'file', fs.root, 'dir'), ['EXIST', 'ISDIR'])
      await expectFsalErrorOf(fs.rename(fs.root, 'dir', fs.root, 'file'), ['EXIST', 'NOTDIR'])

      await expectFile(fs, fs.root, 'file', data)
      expect((await fs.lookup(fs.root, 'dir')).attributes.fileId, 'fileid of dir').toBe(dir.attributes.fileId)
      expect(await fs.list(dir.handle), 'entries of dir').toEqual(['inner'])
    })

    contractCase('rename to the same name changes nothing', {}, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      await fs.rename(fs.root, 'file', fs.root, 'file')

      await expectFile(fs, fs.root, 'file', data)
      expect((await fs.getattr(file.handle)).fileId, 'fileid through the old handle').toBe(file.attributes.fileId)
    })

    contractCase('rename of a missing name fails with NOENT', {}, async ({ fs }) => {
      await expectFsalError(fs.rename(fs.root, 'missing', fs.root, 'other'), 'NOENT')

      await expectAbsent(fs, fs.root, 'other')
    })
  })
}
