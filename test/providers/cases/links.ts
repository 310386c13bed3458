// Symbolic links (SYMLINK, READLINK) and hard links (LINK), for backends that have them.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import { expectBytes, expectFsalError, pattern } from '../harness.js'
import { LIMIT_BYTES } from './quota.js'

const SYMLINK_TARGETS: readonly string[] = ['plain', '../up/and/over', '/absolute/path', 'dangling 日本 😀 ?#%&', 'x'.repeat(1_000)]

export function linkCases(contractCase: DefineCase): void {
  describe('symbolic links', () => {
    const symlinks = { needs: ['symlinks'] } as const

    contractCase('symlink stores its target exactly', symlinks, async ({ fs }) => {
      for (const [index, target] of SYMLINK_TARGETS.entries()) {
        const link = await fs.symlink(fs.root, `link-${index}`, Buffer.from(target))
        expect(link.attributes.type, `type of link-${index}`).toBe('symlink')
      }

      for (const [index, target] of SYMLINK_TARGETS.entries()) {
        const link = await fs.lookup(fs.root, `link-${index}`)
        expect(link.attributes.type, `type of link-${index} found by LOOKUP`).toBe('symlink')
        expectBytes(await fs.readlink(link.handle), Buffer.from(target), `target of link-${index}`)
      }
      expect(await fs.list(fs.root), 'names listed').toEqual(SYMLINK_TARGETS.map((_, index) => `link-${index}`))
    })

    contractCase('symlink to a directory is not followed', symlinks, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')
      await fs.createWith(dir.handle, 'inner', pattern(10, 1))
      const link = await fs.symlink(fs.root, 'link', Buffer.from('dir'))

      await expectFsalError(fs.lookup(link.handle, 'inner'), 'NOTDIR')
      await expectFsalError(fs.create(link.handle, 'created'), 'NOTDIR')
      await expectFsalError(fs.read(link.handle, 0, 10), 'INVAL')

      expect(await fs.list(dir.handle), 'entries of the directory').toEqual(['inner'])
    })

    contractCase('symlink out of the volume is not followed', symlinks, async ({ fs }) => {
      const absolute = await fs.symlink(fs.root, 'absolute', Buffer.from('/etc'))
      const upward = await fs.symlink(fs.root, 'upward', Buffer.from('../../../../../../etc'))

      await expectFsalError(fs.lookup(absolute.handle, 'passwd'), 'NOTDIR')
      await expectFsalError(fs.lookup(upward.handle, 'passwd'), 'NOTDIR')
      await expectFsalError(fs.create(absolute.handle, 'planted'), 'NOTDIR')

      expectBytes(await fs.readlink(absolute.handle), Buffer.from('/etc'), 'target of the absolute link')
    })

    contractCase('create over a dangling symlink creates nothing', symlinks, async ({ fs }) => {
      await fs.symlink(fs.root, 'link', Buffer.from('through-link'))

      await expectFsalError(fs.create(fs.root, 'link', { how: 'unchecked' }), 'EXIST')
      await expectFsalError(fs.create(fs.root, 'link', { how: 'guarded' }), 'EXIST')
      await expectFsalError(fs.create(fs.root, 'link', { how: 'exclusive', verifier: Buffer.alloc(8, 7) }), 'EXIST')

      expect(await fs.list(fs.root), 'entries').toEqual(['link'])
      expect((await fs.lookup(fs.root, 'link')).attributes.type, 'type of link').toBe('symlink')
    })

    contractCase('symlink of an existing name fails with EXIST', symlinks, async ({ fs }) => {
      const data = pattern(100, 1)
      await fs.createWith(fs.root, 'file', data)

      await expectFsalError(fs.symlink(fs.root, 'file', Buffer.from('elsewhere')), 'EXIST')

      const file = await fs.lookup(fs.root, 'file')
      expect(file.attributes.type, 'type of file').toBe('file')
      expectBytes(await fs.readAll(file.handle), data, 'content of file')
    })

    contractCase('symlink remove and rename spare target', symlinks, async ({ fs }) => {
      const data = pattern(100, 1)
      await fs.createWith(fs.root, 'target', data)
      await fs.symlink(fs.root, 'link', Buffer.from('target'))

      await fs.rename(fs.root, 'link', fs.root, 'moved')
      expectBytes(await fs.readlink((await fs.lookup(fs.root, 'moved')).handle), Buffer.from('target'), 'target of the renamed link')
      await fs.remove(fs.root, 'moved')

      expect(await fs.list(fs.root), 'entries').toEqual(['target'])
      expectBytes(await fs.readAll((await fs.lookup(fs.root, 'target')).handle), data, 'content of the link target')
    })

    contractCase('readlink of a file fails with INVAL', symlinks, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')

      await expectFsalError(fs.readlink(file.handle), 'INVAL')
    })
  })

  describe('hard links', () => {
    const hardLinks = { needs: ['hardLinks'] } as const

    contractCase('link adds a second name', hardLinks, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'first', pattern(1_000, 1))

      const linked = await fs.link(file.handle, fs.root, 'second')

      expect(linked.fileId, 'fileid of the new name').toBe(file.attributes.fileId)
      expect(linked.nlink, 'names after LINK').toBe(2)
      const second = await fs.lookup(fs.root, 'second')
      expect(second.attributes.fileId, 'fileid found by LOOKUP').toBe(file.attributes.fileId)
      const patch = pattern(100, 2)
      await fs.write(second.handle, 0, patch)
      const expected = pattern(1_000, 1)
      patch.copy(expected)
      expectBytes(await fs.readAll(file.handle), expected, 'write through one name read through the other')
      expect(await fs.list(fs.root), 'names listed').toEqual(['first', 'second'])
    })

    contractCase('removing one name keeps the file', hardLinks, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const file = await fs.createWith(fs.root, 'first', data)
      await fs.link(file.handle, fs.root, 'second')

      const removed = await fs.remove(fs.root, 'first')

      expect(removed.nlink, 'names left').toBe(1)
      expectBytes(await fs.readAll((await fs.lookup(fs.root, 'second')).handle), data, 'content through the other name')
      // The handle was issued for the removed name; it names the file, which still exists.
      expect((await fs.getattr(file.handle)).fileId, 'fileid through the handle of the removed name').toBe(file.attributes.fileId)
      expectBytes(await fs.readAll(file.handle), data, 'content through the handle of the removed name')
    })

    contractCase('link to an existing name fails with EXIST', hardLinks, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(10, 1))
      const data = pattern(20, 2)
      await fs.createWith(fs.root, 'taken', data)

      await expectFsalError(fs.link(file.handle, fs.root, 'taken'), 'EXIST')

      expectBytes(await fs.readAll((await fs.lookup(fs.root, 'taken')).handle), data, 'content of the taken name')
      expect((await fs.getattr(file.handle)).nlink, 'names of file').toBe(1)
    })

    contractCase('link of a directory fails with ISDIR', hardLinks, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')

      await expectFsalError(fs.link(dir.handle, fs.root, 'alias'), 'ISDIR')

      expect(await fs.list(fs.root), 'entries').toEqual(['dir'])
    })

    contractCase('rename over a linked file keeps its other name', hardLinks, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const file = await fs.createWith(fs.root, 'kept', data)
      await fs.link(file.handle, fs.root, 'replaced')
      const source = pattern(500, 2)
      await fs.createWith(fs.root, 'source', source)

      const replaced = await fs.rename(fs.root, 'source', fs.root, 'replaced')

      expect(replaced?.nlink, 'names the replaced file has left').toBe(1)
      expectBytes(await fs.readAll((await fs.lookup(fs.root, 'kept')).handle), data, 'content of the other name')
      expectBytes(await fs.readAll((await fs.lookup(fs.root, 'replaced')).handle), source, 'content of the rename target')
    })

    contractCase('linked file frees bytes with last name', { needs: ['hardLinks'], sizeLimitBytes: LIMIT_BYTES }, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'first', pattern(40_000, 1))
      await fs.link(file.handle, fs.root, 'second')
      expect(fs.volume.usedBytes, 'usage with two names').toBe(40_000)

      await fs.remove(fs.root, 'first')
      expect(fs.volume.usedBytes, 'usage after removing one name').toBe(40_000)

      await fs.remove(fs.root, 'second')
      expect(fs.volume.usedBytes, 'usage after removing the last name').toBe(0)
    })
  })
}
