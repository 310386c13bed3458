// A directory of 5,000 objects in s3rver, paged through AegisFsal.readdir. The contract suite
// creates its 5,000 entries through the provider, which takes quadratic time in s3rver (see its
// fixture in opendal-s3.contract.test.ts). Here the objects are put straight into the bucket, as
// another S3 client would, and only the listing goes through the provider.

import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Operator } from 'opendal'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { OpenDalProvider } from '../../src/providers/opendal/provider.js'
import { startS3rver, type S3rver } from '../helpers/s3rver.js'
import { FsalHarness, inParallel } from './harness.js'

const ENTRIES = 5_000
const PUT_CONCURRENCY = 32

let server: S3rver
let stateDir: string

beforeAll(async () => {
  server = await startS3rver()
  stateDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-s3-listing-'))
})

afterAll(async () => {
  await server?.stop()
  await rm(stateDir, { recursive: true, force: true })
})

describe('OpenDAL s3 large directory', () => {
  it('lists 5,000 objects each once', async () => {
    const root = `/listing/${randomUUID()}/`
    const bucket = new Operator('s3', server.operatorOptions(root))
    const names = Array.from({ length: ENTRIES }, (_, i) => `object-${String(i).padStart(5, '0')}`)
    await inParallel(names, PUT_CONCURRENCY, (name) => bucket.write(`large/${name}`, Buffer.from(name)))

    const fs = await FsalHarness.open(new OpenDalProvider({ scheme: 's3', options: server.operatorOptions(root), stateDir, logger: pino({ level: 'silent' }) }))
    try {
      const dir = await fs.lookup(fs.root, 'large')
      // An odd page size, so that page boundaries fall where no S3 listing page ends.
      const listing = await fs.listPaged(dir.handle, 97)
      const listed = listing.names.filter((name) => name !== '.' && name !== '..')

      expect(listing.names.length, 'entries listed').toBe(ENTRIES + 2)
      expect(new Set(listed).size, 'distinct names').toBe(ENTRIES)
      expect(listed.sort(), 'names listed').toEqual(names)
      expect(listing.pages, 'pages').toBe(Math.ceil((ENTRIES + 2) / 97))
      const fileIds = new Set([...listing.attributes.values()].map((attributes) => attributes.fileId))
      expect(fileIds.size, 'distinct fileids').toBe(ENTRIES)
      expect(listing.attributes.get('object-01234')?.sizeBytes, 'size of one object').toBe('object-01234'.length)
    } finally {
      await fs.close()
    }
  }, 300_000)
})
