// What the backend itself stores after each kind of change, read around the provider, so that a
// provider cannot pass the other cases by replying from its own cache.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import type { BackendInspector } from '../fixture.js'
import { expectBytes, expectFsalError, pattern } from '../harness.js'
import { SPECIAL_NAMES } from './names.js'
import { LIMIT_BYTES } from './quota.js'

/** Asserts that the backend stores a regular file at `path` containing exactly `data`. */
async function expectStored(inspect: BackendInspector, path: readonly string[], data: Buffer): Promise<void> {
  const label = `${path.join('/')} in the backend`
  const stored = await inspect.readFile(path)
  expect(stored, label).not.toBeNull()
  expectBytes(stored!, data, label)
}

export function backendCases(contractCase: DefineCase): void {
  describe('backend state', () => {
    const inspected = { needs: ['inspect'] } as const

    contractCase('committed writes reach the backend', inspected, async ({ fs, inspect }) => {
      const file = await fs.create(fs.root, 'file')
      const data = pattern(100_000, 1)

      await fs.write(file.handle, 0, data.subarray(0, 60_000), 0)
      await fs.write(file.handle, 60_000, data.subarray(60_000), 0)
      await fs.commit(file.handle)

      await expectStored(inspect, ['file'], data)
    })

    contractCase('zero-length file is stored', inspected, async ({ fs, inspect }) => {
      await fs.create(fs.root, 'empty')

      const stored = await inspect.readFile(['empty'])

      expect(stored, 'file in the backend').not.toBeNull()
      expect(stored?.length, 'bytes in the backend').toBe(0)
    })

    contractCase('names are stored unchanged', inspected, async ({ fs, inspect }) => {
      for (const name of SPECIAL_NAMES) await fs.create(fs.root, name)
      const dir = await fs.mkdir(fs.root, 'dir')
      await fs.create(dir.handle, '日本 ?#%&')

      expect((await inspect.list([]))?.sort(), 'names in the backend root').toEqual([...SPECIAL_NAMES, 'dir'].sort())
      expect(await inspect.list(['dir']), 'names in the backend directory').toEqual(['日本 ?#%&'])
    })

    contractCase('removed file is gone from the backend', inspected, async ({ fs, inspect }) => {
      await fs.createWith(fs.root, 'file', pattern(1_000, 1))

      await fs.remove(fs.root, 'file')

      expect(await inspect.readFile(['file']), 'file in the backend').toBeNull()
      expect(await inspect.list([]), 'names in the backend root').toEqual([])
    })

    contractCase('failed rmdir deletes nothing in the backend', inspected, async ({ fs, inspect }) => {
      const dir = await fs.mkdir(fs.root, 'dir')
      const data = pattern(1_000, 1)
      await fs.createWith(dir.handle, 'file', data)

      await expectFsalError(fs.rmdir(fs.root, 'dir'), 'NOTEMPTY')

      expect(await inspect.list(['dir']), 'names in the backend directory').toEqual(['file'])
      await expectStored(inspect, ['dir', 'file'], data)
    })

    contractCase('rename over a file replaces it in the backend', inspected, async ({ fs, inspect }) => {
      const source = pattern(1_000, 1)
      await fs.createWith(fs.root, 'source', source)
      await fs.createWith(fs.root, 'target', pattern(3_000, 2))

      await fs.rename(fs.root, 'source', fs.root, 'target')

      expect(await inspect.readFile(['source']), 'source in the backend').toBeNull()
      await expectStored(inspect, ['target'], source)
    })

    contractCase('renamed directory moves in the backend', inspected, async ({ fs, inspect }) => {
      const data = pattern(1_000, 1)
      const dir = await fs.mkdir(fs.root, 'dir')
      await fs.createWith(dir.handle, 'file', data)

      await fs.rename(fs.root, 'dir', fs.root, 'moved')

      expect(await inspect.list(['dir']), 'old directory in the backend').toBeNull()
      await expectStored(inspect, ['moved', 'file'], data)
    })

    contractCase('truncation reaches the backend', inspected, async ({ fs, inspect }) => {
      const data = pattern(10_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      await fs.setSize(file.handle, 3_000)
      await fs.commit(file.handle)

      await expectStored(inspect, ['file'], data.subarray(0, 3_000))
    })

    contractCase('quota rejection leaves backend unchanged', { needs: ['inspect'], sizeLimitBytes: LIMIT_BYTES }, async ({ fs, inspect }) => {
      const data = pattern(60_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      await expectFsalError(fs.write(file.handle, 50_000, pattern(20_000, 2)), 'DQUOT')

      await expectStored(inspect, ['file'], data)
    })
  })
}
