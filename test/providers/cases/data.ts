// File data: ranged reads with their eof flags, writes at any offset, truncation and extension.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import { expectBytes, expectFsalError, expectZeros, pattern } from '../harness.js'

const FILE_BYTES = 10_000
const MIB = 1024 * 1024
const GIB = 1024 * MIB

export function dataCases(contractCase: DefineCase): void {
  describe('read', () => {
    const ranges = [
      { title: 'read at the start', offset: 0, count: 100, bytes: 100, eof: false },
      { title: 'read in the middle', offset: 4_000, count: 1_000, bytes: 1_000, eof: false },
      { title: 'read across the end', offset: 9_900, count: 500, bytes: 100, eof: true },
      { title: 'read ending exactly at the end', offset: 9_000, count: 1_000, bytes: 1_000, eof: true },
      { title: 'read at the end of file', offset: FILE_BYTES, count: 10, bytes: 0, eof: true },
      { title: 'read past the end of file', offset: 2 * FILE_BYTES, count: 10, bytes: 0, eof: true },
      { title: 'read of zero bytes', offset: 0, count: 0, bytes: 0, eof: false }
    ]
    for (const range of ranges) {
      contractCase(range.title, {}, async ({ fs }) => {
        const data = pattern(FILE_BYTES, 1)
        const file = await fs.createWith(fs.root, 'file', data)

        const reply = await fs.read(file.handle, range.offset, range.count)

        const end = Math.min(FILE_BYTES, range.offset + range.bytes)
        expectBytes(reply.data, data.subarray(Math.min(range.offset, FILE_BYTES), end), `READ of ${range.count} at ${range.offset}`)
        expect(reply.eof, 'eof').toBe(range.eof)
        expect(reply.attributes.sizeBytes, 'size in the READ reply').toBe(FILE_BYTES)
      })
    }

    contractCase('read of a zero-length file', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'empty')

      const reply = await fs.read(file.handle, 0, 100)

      expect(reply.data.length, 'bytes read').toBe(0)
      expect(reply.eof, 'eof').toBe(true)
    })

    contractCase('read of 1 MiB, twice', {}, async ({ fs }) => {
      const data = pattern(MIB + 3, 2)
      const file = await fs.createWith(fs.root, 'large', data)

      const first = await fs.read(file.handle, 0, MIB)
      const second = await fs.read(file.handle, 3, MIB)

      expectBytes(first.data, data.subarray(0, MIB), 'first READ of 1 MiB')
      expect(first.eof, 'eof of the first READ').toBe(false)
      expectBytes(second.data, data.subarray(3), 'second READ, ending at the end of file')
      expect(second.eof, 'eof of the second READ').toBe(true)
    })

    contractCase('read of a directory fails with ISDIR', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')

      await expectFsalError(fs.read(dir.handle, 0, 100), 'ISDIR')
    })
  })

  describe('write', () => {
    contractCase('sequential writes', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const chunks = [0, 1, 2, 3].map((seed) => pattern(3_000, seed))

      for (const [index, chunk] of chunks.entries()) {
        const result = await fs.write(file.handle, index * 3_000, chunk)
        expect(result.count, `count of write ${index}`).toBe(3_000)
        expect(result.after.sizeBytes, `size after write ${index}`).toBe((index + 1) * 3_000)
      }

      expectBytes(await fs.readAll(file.handle), Buffer.concat(chunks), 'file after sequential writes')
    })

    contractCase('writes in random order', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const chunkBytes = 1_000
      const order = [7, 2, 15, 0, 11, 4, 9, 13, 1, 6, 14, 3, 10, 8, 12, 5]
      const chunks = order.map((_, index) => pattern(chunkBytes, index))

      for (const index of order) await fs.write(file.handle, index * chunkBytes, chunks[index])

      expect((await fs.getattr(file.handle)).sizeBytes, 'size').toBe(order.length * chunkBytes)
      expectBytes(await fs.readAll(file.handle), Buffer.concat(chunks), 'file after writes in random order')
    })

    contractCase('gap between writes reads as zeros', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const head = pattern(1_000, 1)
      const tail = pattern(1_000, 2)
      const tailOffset = 200_000

      await fs.write(file.handle, 0, head)
      await fs.write(file.handle, tailOffset, tail)

      const content = await fs.readAll(file.handle)
      expect(content.length, 'size').toBe(tailOffset + tail.length)
      expectBytes(content.subarray(0, head.length), head, 'bytes before the gap')
      expectZeros(content.subarray(head.length, tailOffset), 'the gap')
      expectBytes(content.subarray(tailOffset), tail, 'bytes after the gap')
    })

    contractCase('write past the end of file', {}, async ({ fs }) => {
      const data = pattern(3_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)
      const appended = pattern(500, 2)

      const result = await fs.write(file.handle, 3_100, appended)

      expect(result.after.sizeBytes, 'size after the write').toBe(3_600)
      const content = await fs.readAll(file.handle)
      expectBytes(content.subarray(0, 3_000), data, 'old content')
      expectZeros(content.subarray(3_000, 3_100), 'gap between the old end and the write')
      expectBytes(content.subarray(3_100), appended, 'written bytes')
    })

    contractCase('overwrite inside a file keeps its size', {}, async ({ fs }) => {
      const data = pattern(FILE_BYTES, 1)
      const file = await fs.createWith(fs.root, 'file', data)
      const patch = pattern(100, 2)

      const result = await fs.write(file.handle, 5_000, patch)

      expect(result.after.sizeBytes, 'size after the overwrite').toBe(FILE_BYTES)
      const expected = Buffer.from(data)
      patch.copy(expected, 5_000)
      expectBytes(await fs.readAll(file.handle), expected, 'file after the overwrite')
    })

    contractCase('concurrent writes at distinct offsets', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const chunkBytes = 32 * 1024
      const chunks = Array.from({ length: 32 }, (_, index) => pattern(chunkBytes, index))

      await Promise.all(chunks.map((chunk, index) => fs.write(file.handle, index * chunkBytes, chunk)))

      expectBytes(await fs.readAll(file.handle), Buffer.concat(chunks), 'file after concurrent writes')
    })

    contractCase('stable writes and commit', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const chunks = [pattern(1_000, 0), pattern(1_000, 1), pattern(1_000, 2)]

      for (const stable of [0, 1, 2] as const) {
        const result = await fs.write(file.handle, stable * 1_000, chunks[stable], stable)
        // RFC 1813, section 3.3.7: a server never commits at a lower level than the client requested.
        expect(result.committed, `committed for stable ${stable}`).toBeGreaterThanOrEqual(stable)
      }
      await fs.commit(file.handle)

      expectBytes(await fs.readAll(file.handle), Buffer.concat(chunks), 'file after committed writes')
    })

    contractCase('write beyond 4 GiB', { needs: ['sparse'] }, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file')
      const data = pattern(4_096, 1)
      const offset = 5 * GIB + 123

      await fs.write(file.handle, offset, data)

      expect((await fs.getattr(file.handle)).sizeBytes, 'size').toBe(offset + data.length)
      const written = await fs.read(file.handle, offset, 8_192)
      expectBytes(written.data, data, 'bytes read back beyond 4 GiB')
      expect(written.eof, 'eof').toBe(true)
      expectZeros((await fs.read(file.handle, 4 * GIB - 10, 20)).data, 'gap around 4 GiB')
    })

    contractCase('write to a directory fails with ISDIR', {}, async ({ fs }) => {
      const dir = await fs.mkdir(fs.root, 'dir')

      await expectFsalError(fs.write(dir.handle, 0, pattern(10, 1)), 'ISDIR')
    })
  })

  describe('zero-length files', () => {
    contractCase('zero-length file: create, list, read', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'empty')

      expect(file.attributes.sizeBytes, 'size in the CREATE reply').toBe(0)
      expect((await fs.getattr(file.handle)).sizeBytes, 'size from GETATTR').toBe(0)
      const listing = await fs.listPaged(fs.root, 100)
      expect(listing.names, 'entries').toEqual(['.', '..', 'empty'])
      expect(listing.attributes.get('empty')?.sizeBytes, 'size in the listing').toBe(0)
      expect((await fs.readAll(file.handle)).length, 'bytes read').toBe(0)
    })

    contractCase('zero-length file survives a rename', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'empty')

      await fs.rename(fs.root, 'empty', fs.root, 'still empty')

      const moved = await fs.lookup(fs.root, 'still empty')
      expect(moved.attributes.fileId, 'fileid after the rename').toBe(file.attributes.fileId)
      expect(moved.attributes.sizeBytes, 'size after the rename').toBe(0)
      const reply = await fs.read(moved.handle, 0, 100)
      expect(reply.data.length, 'bytes read').toBe(0)
      expect(reply.eof, 'eof').toBe(true)
    })

    contractCase('write of zero bytes keeps the size', {}, async ({ fs }) => {
      const empty = await fs.create(fs.root, 'empty')
      const data = pattern(1_000, 1)
      const full = await fs.createWith(fs.root, 'full', data)

      const intoEmpty = await fs.write(empty.handle, 0, Buffer.alloc(0))
      const intoFull = await fs.write(full.handle, 500, Buffer.alloc(0))

      expect(intoEmpty.count, 'count written to the empty file').toBe(0)
      expect(intoEmpty.after.sizeBytes, 'size of the empty file').toBe(0)
      expect(intoFull.count, 'count written to the full file').toBe(0)
      expectBytes(await fs.readAll(full.handle), data, 'content of the full file')
    })
  })

  describe('truncate and extend', () => {
    contractCase('truncate shortens a file', {}, async ({ fs }) => {
      const data = pattern(FILE_BYTES, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      const after = await fs.setSize(file.handle, 4_000)

      expect(after.sizeBytes, 'size in the SETATTR reply').toBe(4_000)
      expectBytes(await fs.readAll(file.handle), data.subarray(0, 4_000), 'file after truncation')
      const atEnd = await fs.read(file.handle, 4_000, 100)
      expect(atEnd.data.length, 'bytes read at the new end').toBe(0)
      expect(atEnd.eof, 'eof at the new end').toBe(true)
    })

    contractCase('extension reads as zeros', {}, async ({ fs }) => {
      const data = pattern(4_000, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      const after = await fs.setSize(file.handle, FILE_BYTES)

      expect(after.sizeBytes, 'size in the SETATTR reply').toBe(FILE_BYTES)
      const content = await fs.readAll(file.handle)
      expectBytes(content.subarray(0, 4_000), data, 'old content')
      expectZeros(content.subarray(4_000), 'extension')
      expect(content.length, 'size').toBe(FILE_BYTES)
    })

    contractCase('truncate then extend reads zeros, not old bytes', {}, async ({ fs }) => {
      const data = pattern(FILE_BYTES, 1)
      const file = await fs.createWith(fs.root, 'file', data)

      await fs.setSize(file.handle, 2_000)
      await fs.setSize(file.handle, FILE_BYTES)

      const content = await fs.readAll(file.handle)
      expectBytes(content.subarray(0, 2_000), data.subarray(0, 2_000), 'content kept by the truncation')
      expectZeros(content.subarray(2_000), 'bytes past the truncation point')
    })

    contractCase('truncate to zero', {}, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(FILE_BYTES, 1))

      const after = await fs.setSize(file.handle, 0)

      expect(after.sizeBytes, 'size in the SETATTR reply').toBe(0)
      const reply = await fs.read(file.handle, 0, 100)
      expect(reply.data.length, 'bytes read').toBe(0)
      expect(reply.eof, 'eof').toBe(true)
    })

    contractCase('create with an initial size', {}, async ({ fs }) => {
      const file = await fs.create(fs.root, 'file', { how: 'guarded', attributes: { sizeBytes: 5_000 } })

      expect(file.attributes.sizeBytes, 'size in the CREATE reply').toBe(5_000)
      expectZeros(await fs.readAll(file.handle), 'content of a file created with a size')
    })

    contractCase('extend to 5 GiB and back', { needs: ['sparse'] }, async ({ fs }) => {
      const file = await fs.createWith(fs.root, 'file', pattern(100, 1))

      await fs.setSize(file.handle, 5 * GIB)

      const last = await fs.read(file.handle, 5 * GIB - 4_096, 8_192)
      expectZeros(last.data, 'last 4 KiB of the extension')
      expect(last.data.length, 'bytes read at the end').toBe(4_096)
      expect(last.eof, 'eof').toBe(true)
      expect((await fs.setSize(file.handle, 0)).sizeBytes, 'size after truncating back').toBe(0)
    })
  })
}
