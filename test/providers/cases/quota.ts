// Usage accounting against a volume's size_limit. Files count their size, so these cases use
// regular files in the root only: directory sizes differ between backends.

import { describe, expect } from 'vitest'
import { FsalError } from '../../../src/fsal/errors.js'
import type { DefineCase } from '../case.js'
import { expectBytes, expectFsalError, pattern } from '../harness.js'

export const LIMIT_BYTES = 64 * 1024

export function quotaCases(contractCase: DefineCase): void {
  describe('quota', () => {
    const limited = { sizeLimitBytes: LIMIT_BYTES }

    contractCase('writes within the limit pass', limited, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const first = pattern(40_000, 1)
      const rest = pattern(LIMIT_BYTES - 40_000, 2)

      await fs.write(file.handle, 0, first)
      await fs.write(file.handle, first.length, rest)

      expect(fs.volume.usedBytes, 'usage at the limit').toBe(LIMIT_BYTES)
      expectBytes(await fs.readAll(file.handle), Buffer.concat([first, rest]), 'file filled to the limit')
    })

    contractCase('write over the limit changes nothing', limited, async ({ fs }) => {
      const data = pattern(60_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      await expectFsalError(fs.write(file.handle, 60_000, pattern(LIMIT_BYTES - 60_000 + 1, 2)), 'DQUOT')
      // Starts inside the file and ends past the limit: no part of it may land.
      await expectFsalError(fs.write(file.handle, 58_000, pattern(10_000, 3)), 'DQUOT')
      await expectFsalError(fs.write(file.handle, LIMIT_BYTES, pattern(1, 4)), 'DQUOT')

      expect((await fs.getattr(file.handle)).sizeBytes, 'size after the rejected writes').toBe(60_000)
      expectBytes(await fs.readAll(file.handle), data, 'content after the rejected writes')
      expect(fs.volume.usedBytes, 'usage after the rejected writes').toBe(60_000)
    })

    contractCase('over-limit write leaves new file empty', limited, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')

      await expectFsalError(fs.write(file.handle, 0, pattern(LIMIT_BYTES + 1, 1)), 'DQUOT')

      expect((await fs.getattr(file.handle)).sizeBytes, 'size').toBe(0)
      expect(fs.volume.usedBytes, 'usage').toBe(0)
    })

    contractCase('overwrites inside a file do not count', limited, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(60_000, 0))

      for (let round = 1; round <= 10; round++) await fs.write(file.handle, 0, pattern(60_000, round))
      await fs.write(file.handle, 30_000, pattern(30_000, 11))

      expect(fs.volume.usedBytes, 'usage after the overwrites').toBe(60_000)
      const other = await fs.create(fs.root, 'other')
      await fs.write(other.handle, 0, pattern(LIMIT_BYTES - 60_000, 12))
      expect(fs.volume.usedBytes, 'usage with a second file up to the limit').toBe(LIMIT_BYTES)
    })

    contractCase('removing a file frees its bytes', limited, async ({ fs }) => {
      await fs.createWith(fs.root, 'full', pattern(LIMIT_BYTES, 1))
      const next = await fs.create(fs.root, 'next')
      await expectFsalError(fs.write(next.handle, 0, pattern(1, 2)), 'DQUOT')

      await fs.remove(fs.root, 'full')

      expect(fs.volume.usedBytes, 'usage after the removal').toBe(0)
      const data = pattern(LIMIT_BYTES, 3)
      await fs.write(next.handle, 0, data)
      expectBytes(await fs.readAll(next.handle), data, 'file written after the removal')
    })

    contractCase('truncating a file frees its bytes', limited, async ({ fs }) => {
      const full = await fs.createWith(fs.root, 'full', pattern(LIMIT_BYTES, 1))

      await fs.setSize(full.handle, 1_000)

      expect(fs.volume.usedBytes, 'usage after the truncation').toBe(1_000)
      const next = await fs.create(fs.root, 'next')
      await fs.write(next.handle, 0, pattern(LIMIT_BYTES - 1_000, 2))
      expect(fs.volume.usedBytes, 'usage at the limit again').toBe(LIMIT_BYTES)
    })

    contractCase('extending past the limit fails with DQUOT', limited, async ({ fs }) => {
      const data = pattern(1_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      await expectFsalError(fs.setSize(file.handle, LIMIT_BYTES + 1), 'DQUOT')

      expect((await fs.getattr(file.handle)).sizeBytes, 'size after the rejected extension').toBe(1_000)
      expectBytes(await fs.readAll(file.handle), data, 'content after the rejected extension')
      expect(fs.volume.usedBytes, 'usage after the rejected extension').toBe(1_000)
    })

    contractCase('create with a size counts only the growth', limited, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(60_000, 1))

      // UNCHECKED on an existing file sets its size; shrinking it takes no new bytes.
      const created = await fs.create(fs.root, 'file', { how: 'unchecked', attributes: { sizeBytes: 30_000 } })

      expect(created.attributes.fileId, 'fileid').toBe(file.attributes.fileId)
      expect(created.attributes.sizeBytes, 'size in the CREATE reply').toBe(30_000)
      expect(fs.volume.usedBytes, 'usage after the CREATE').toBe(30_000)
    })

    contractCase('over-limit create leaves no file', limited, async ({ fs }) => {
      await expectFsalError(fs.create(fs.root, 'file', { how: 'unchecked', attributes: { sizeBytes: LIMIT_BYTES + 1 } }), 'DQUOT')

      expect(await fs.list(fs.root), 'entries after the rejected create').toEqual([])
      expect(fs.volume.usedBytes, 'usage').toBe(0)
    })

    contractCase('rename over a file frees the replaced bytes', limited, async ({ fs }) => {
      await fs.createWith(fs.root, 'source', pattern(30_000, 1))
      await fs.createWith(fs.root, 'target', pattern(30_000, 2))

      await fs.rename(fs.root, 'source', fs.root, 'target')

      expect(fs.volume.usedBytes, 'usage after the rename').toBe(30_000)
      const next = await fs.create(fs.root, 'next')
      await fs.write(next.handle, 0, pattern(LIMIT_BYTES - 30_000, 3))
      expect(fs.volume.usedBytes, 'usage at the limit').toBe(LIMIT_BYTES)
    })

    contractCase('concurrent writes cannot pass the limit', limited, async ({ fs }) => {
      const files = await Promise.all(Array.from({ length: 10 }, (_, index) => fs.create(fs.root, `file-${index}`)))

      const outcomes = await Promise.allSettled(files.map((file, index) => fs.write(file.handle, 0, pattern(10_000, index))))

      const written = outcomes.filter((outcome) => outcome.status === 'fulfilled').length
      const rejectedCount = outcomes.filter((outcome) => outcome.status === 'rejected' && outcome.reason instanceof FsalError && outcome.reason.code === 'DQUOT').length
      expect(written, 'writes that fit under the limit').toBe(Math.floor(LIMIT_BYTES / 10_000))
      expect(rejectedCount, 'writes rejected with DQUOT').toBe(10 - written)
      expect(fs.volume.usedBytes, 'usage').toBe(written * 10_000)
      const sizes = await Promise.all(files.map(async (file) => (await fs.getattr(file.handle)).sizeBytes))
      expect(sizes.reduce((sum, size) => sum + size, 0), 'bytes stored').toBe(written * 10_000)
    })

    contractCase('directories give back what they were charged', limited, async ({ fs }) => {
      const empty = fs.volume.usedBytes
      await fs.mkdir(fs.root, 'first')
      const oneDirectory = fs.volume.usedBytes
      await fs.mkdir(fs.root, 'second')

      await fs.rename(fs.root, 'first', fs.root, 'second')
      expect(fs.volume.usedBytes, 'usage after a directory replaced another').toBe(oneDirectory)

      await fs.rmdir(fs.root, 'second')
      expect(fs.volume.usedBytes, 'usage after the last directory was removed').toBe(empty)
    })

    contractCase('symlinks count their target', { needs: ['symlinks'], sizeLimitBytes: LIMIT_BYTES }, async ({ fs }) => {
      const target = Buffer.from('t'.repeat(1_000))
      await fs.createWith(fs.root, 'file', pattern(LIMIT_BYTES - 1_500, 1))

      await fs.symlink(fs.root, 'link', target)
      expect(fs.volume.usedBytes, 'usage with the symlink').toBe(LIMIT_BYTES - 500)
      await expectFsalError(fs.symlink(fs.root, 'over', target), 'DQUOT')
      expect(await fs.list(fs.root), 'entries after the rejected symlink').toEqual(['file', 'link'])

      await fs.remove(fs.root, 'link')
      expect(fs.volume.usedBytes, 'usage after removing the symlink').toBe(LIMIT_BYTES - 1_500)
    })

    contractCase('fsstat reports the limit and the free bytes', limited, async ({ fs }) => {
      await fs.createWith(fs.root, 'file', pattern(20_000, 1))

      const stat = await fs.fsstat()

      expect(stat.totalBytes, 'total bytes').toBe(LIMIT_BYTES)
      expect(stat.freeBytes, 'free bytes').toBe(LIMIT_BYTES - 20_000)
      expect(stat.availableBytes, 'available bytes').toBe(LIMIT_BYTES - 20_000)
    })
  })
}
