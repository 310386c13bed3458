// Attributes that NFS clients act on: the mode and times a SETATTR sets, and the mtime changes
// that tell a client's cache that data or a directory changed.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import { pattern } from '../harness.js'

/** 2001-09-09; any time a change would be stamped with differs from it. */
const OLD_TIME = { kind: 'client', sec: 1_000_000_000, nsec: 0 } as const

export function attributeCases(contractCase: DefineCase): void {
  describe('attributes', () => {
    contractCase('setattr sets the mode', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')

      const after = await fs.setattr(file.handle, { mode: 0o640 })

      expect(after.mode & 0o7777, 'mode in the SETATTR reply').toBe(0o640)
      expect((await fs.getattr(file.handle)).mode & 0o7777, 'mode from GETATTR').toBe(0o640)
    })

    contractCase('setattr sets the times', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')

      await fs.setattr(file.handle, { atime: { kind: 'client', sec: 1_500_000_000, nsec: 0 }, mtime: OLD_TIME })

      const attributes = await fs.getattr(file.handle)
      expect(attributes.atimeSec, 'atime').toBe(1_500_000_000)
      expect(attributes.mtimeSec, 'mtime').toBe(OLD_TIME.sec)
    })

    contractCase('write changes the mtime', {}, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(100, 1))
      await fs.setattr(file.handle, { mtime: OLD_TIME })

      const result = await fs.write(file.handle, 10, pattern(10, 2))

      expect(result.after.mtimeSec, 'mtime in the WRITE reply').not.toBe(OLD_TIME.sec)
      expect((await fs.getattr(file.handle)).mtimeSec, 'mtime from GETATTR').not.toBe(OLD_TIME.sec)
    })

    contractCase('truncation changes the mtime', {}, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(100, 1))
      await fs.setattr(file.handle, { mtime: OLD_TIME })

      await fs.setSize(file.handle, 10)

      expect((await fs.getattr(file.handle)).mtimeSec, 'mtime after the truncation').not.toBe(OLD_TIME.sec)
    })

    contractCase('directory changes change its mtime', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')
      const steps: Array<[string, () => Promise<unknown>]> = [
        ['CREATE', () => fs.create(dir.handle, 'file')],
        ['RENAME', () => fs.rename(dir.handle, 'file', dir.handle, 'renamed')],
        ['REMOVE', () => fs.remove(dir.handle, 'renamed')],
        ['MKDIR', () => fs.mkdir(dir.handle, 'sub')],
        ['RMDIR', () => fs.rmdir(dir.handle, 'sub')]
      ]

      for (const [procedure, step] of steps) {
        await fs.setattr(dir.handle, { mtime: OLD_TIME })
        await step()
        expect((await fs.getattr(dir.handle)).mtimeSec, `directory mtime after ${procedure}`).not.toBe(OLD_TIME.sec)
      }
    })
  })
}
