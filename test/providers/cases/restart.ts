// What must survive a node restart: the data, the handles clients hold, and the usage that a
// size_limit is checked against.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import { expectBytes, expectFsalError, pattern } from '../harness.js'
import { LIMIT_BYTES } from './quota.js'

export function restartCases(contractCase: DefineCase): void {
  describe('restart', () => {
    contractCase('data and handles survive a restart', { needs: ['reopen'] }, async ({ fs: before, restart }) => {
      const data = pattern(5_000, 1)
      const dir = await before.mkdir(before.root, 'dir')
      const file = await before.createWith(dir.handle, 'file', data)

      const after = await restart()

      expect((await after.getattr(file.handle)).fileId, 'fileid through the handle from before').toBe(file.attributes.fileId)
      expectBytes(await after.readAll(file.handle), data, 'content through the handle from before')
      expect(await after.list(dir.handle), 'entries through the directory handle from before').toEqual(['file'])
      expectBytes(await after.readAll((await after.lookupPath('dir', 'file')).handle), data, 'content found by path')
    })

    contractCase('removed file stays stale after restart', { needs: ['reopen'] }, async ({ fs: before, restart }) => {
      const file = await before.createWith(before.root, 'file', pattern(100, 1))
      await before.remove(before.root, 'file')

      const after = await restart()

      await expectFsalError(after.getattr(file.handle), 'STALE')
    })

    contractCase('usage is recounted at open', { needs: ['reopen'], sizeLimitBytes: LIMIT_BYTES }, async ({ fs: before, restart }) => {
      await before.createWith(before.root, 'first', pattern(40_000, 1))
      await before.createWith(before.root, 'second', pattern(10_000, 2))

      const after = await restart()

      expect(after.volume.usedBytes, 'usage counted at open').toBe(50_000)
      const next = await after.create(after.root, 'next')
      await expectFsalError(after.write(next.handle, 0, pattern(LIMIT_BYTES - 50_000 + 1, 3)), 'DQUOT')
      await after.write(next.handle, 0, pattern(LIMIT_BYTES - 50_000, 3))
    })
  })
}
