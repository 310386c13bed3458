// Directory listings, paged through AegisFsal.readdir with cookies and cookie verifiers.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import { inParallel, pattern } from '../harness.js'

const LARGE_DIRECTORY_ENTRIES = 5_000
/** Creates in flight at once; NFS clients send about as many requests in parallel. */
const CREATE_CONCURRENCY = 16

function entryNames(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`)
}

/** Returns each name that occurs more than once. */
function repeatedNames(names: readonly string[]): string[] {
  const seen = new Set<string>()
  const repeated = new Set<string>()
  for (const name of names) {
    if (seen.has(name)) repeated.add(name)
    seen.add(name)
  }
  return [...repeated]
}

export function listingCases(contractCase: DefineCase): void {
  describe('listing', () => {
    contractCase('empty directory lists only dot entries', {}, async ({ fs }) => {
      const listing = await fs.listPaged(fs.root, 100)

      expect(listing.names, 'entries of the empty root').toEqual(['.', '..'])
    })

    contractCase('5,000 entries paged, each exactly once', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'large')
      const names = entryNames('entry', LARGE_DIRECTORY_ENTRIES)
      await inParallel(names, CREATE_CONCURRENCY, (name) => fs.create(dir.handle, name))

      // An odd page size, so that page boundaries fall at different places than any provider batch.
      const listing = await fs.listPaged(dir.handle, 97)

      expect(repeatedNames(listing.names), 'names listed more than once').toEqual([])
      expect(listing.names.length, 'entries listed').toBe(LARGE_DIRECTORY_ENTRIES + 2)
      expect(listing.names.filter((name) => name !== '.' && name !== '..').sort(), 'names listed').toEqual(names)
      expect(listing.pages, 'pages').toBe(Math.ceil((LARGE_DIRECTORY_ENTRIES + 2) / 97))
      const fileIds = new Set([...listing.attributes.values()].map((attributes) => attributes.fileId))
      expect(fileIds.size, 'distinct fileids').toBe(LARGE_DIRECTORY_ENTRIES)
      const types = new Set([...listing.attributes.values()].map((attributes) => attributes.type))
      expect([...types], 'types listed').toEqual(['file'])
      const sample = await fs.lookup(dir.handle, names[1234])
      expect(listing.attributes.get(names[1234])?.fileId, `fileid of ${names[1234]} in the listing`).toBe(sample.attributes.fileId)
    })

    contractCase('paging while the directory changes', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'changing')
      const names = entryNames('entry', 1_000)
      await inParallel(names, CREATE_CONCURRENCY, (name) => fs.create(dir.handle, name))
      const removed = names.slice(900)
      const added = entryNames('added', 100)

      const listing = await fs.listPaged(dir.handle, 50, async (page) => {
        if (page !== 3) return
        for (const name of removed) await fs.remove(dir.handle, name)
        for (const name of added) await fs.create(dir.handle, name)
      })

      expect(repeatedNames(listing.names), 'names listed more than once').toEqual([])
      const listed = new Set(listing.names)
      const missing = names.slice(0, 900).filter((name) => !listed.has(name))
      expect(missing, 'names present for the whole listing but not listed').toEqual([])
    })

    contractCase('new listing shows changes', {}, async ({ fs }) => {
      await fs.createWith(fs.root, 'kept', pattern(10, 1))
      await fs.createWith(fs.root, 'renamed', pattern(10, 2))
      expect(await fs.list(fs.root), 'first listing').toEqual(['kept', 'renamed'])

      await fs.create(fs.root, 'created')
      expect(await fs.list(fs.root), 'listing after CREATE').toEqual(['created', 'kept', 'renamed'])

      await fs.remove(fs.root, 'created')
      expect(await fs.list(fs.root), 'listing after REMOVE').toEqual(['kept', 'renamed'])

      await fs.rename(fs.root, 'renamed', fs.root, 'moved')
      expect(await fs.list(fs.root), 'listing after RENAME').toEqual(['kept', 'moved'])

      await fs.mkdir(fs.root, 'dir')
      expect(await fs.list(fs.root), 'listing after MKDIR').toEqual(['dir', 'kept', 'moved'])
    })

    contractCase('listing reports sizes and types', {}, async ({ fs }) => {
      await fs.createWith(fs.root, 'file', pattern(1_234, 1))
      await fs.create(fs.root, 'empty')
      await fs.mkdir(fs.root, 'dir')

      const listing = await fs.listPaged(fs.root, 100)

      expect(listing.attributes.get('file')?.type, 'type of file').toBe('file')
      expect(listing.attributes.get('file')?.sizeBytes, 'size of file').toBe(1_234)
      expect(listing.attributes.get('empty')?.sizeBytes, 'size of empty').toBe(0)
      expect(listing.attributes.get('dir')?.type, 'type of dir').toBe('dir')
    })
  })
}
