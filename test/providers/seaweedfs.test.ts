// The SeaweedFS provider against the in-memory fake filer: each test gets its own fake and a
// volume root at /volumes/test.

import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FsalError } from '../../src/fsal/errors.js'
import { FsalNode } from '../../src/fsal/node.js'
import type { FileAttributes } from '../../src/fsal/types.js'
import { SeaweedFsProvider } from '../../src/providers/seaweedfs/provider.js'
import { startFakeFiler, type FakeFiler, type FakeFilerOptions } from '../helpers/seaweedfs-fake.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
const ROOT = '/volumes/test'
const MIB = 1024 * 1024

let fake: FakeFiler
let provider: SeaweedFsProvider
let root: FsalNode

async function setUp(fakeOptions: FakeFilerOptions = {}, providerOptions: { timeoutMs?: number; retries?: number; listingPageSize?: number; entryCacheMs?: number } = {}): Promise<void> {
  fake = await startFakeFiler(fakeOptions)
  provider = new SeaweedFsProvider({ filerUrl: fake.url, rootPath: ROOT, logger, ...providerOptions })
  const attributes = await provider.open()
  root = new FsalNode(attributes.fileId, attributes.generation, 'dir', null, '')
}

function nodeOf(parent: FsalNode, name: string, attributes: FileAttributes): FsalNode {
  return new FsalNode(attributes.fileId, attributes.generation, attributes.type, parent, name)
}

async function createFile(name: string, content: Buffer, parent = root): Promise<FsalNode> {
  const node = nodeOf(parent, name, await provider.create(parent, name, 0o644, 'guarded'))
  if (content.length > 0) await provider.write(node, 0, content, 2)
  return node
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught
  )
  expect(error).toBeInstanceOf(FsalError)
  expect((error as FsalError).code).toBe(code)
}

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length)
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) % 251
  return bytes
}

describe('SeaweedFS provider', () => {
  beforeEach(async () => {
    await setUp()
  })

  afterEach(async () => {
    await fake.stop()
  })

  it('open creates the root directory', () => {
    expect(fake.stat(ROOT)?.isDirectory).toBe(true)
    expect(root.fileId).toBe(fake.stat(ROOT)?.inode)
  })

  it('open keeps the root id across reopen', async () => {
    const again = new SeaweedFsProvider({ filerUrl: fake.url, rootPath: ROOT, logger })
    const attributes = await again.open()
    expect(attributes.fileId).toBe(root.fileId)
    expect(attributes.type).toBe('dir')
  })

  it('getattr of a removed object is stale', async () => {
    const node = await createFile('gone', Buffer.from('x'))
    await provider.remove(root, 'gone')
    await expectCode(provider.getattr(node), 'STALE')
  })

  it('lookup of a missing name is not found', async () => {
    await expectCode(provider.lookup(root, 'missing'), 'NOENT')
  })

  it('read returns ranges and eof', async () => {
    const content = pattern(10_000, 1)
    const node = await createFile('data', content)

    const middle = await provider.read(node, 100, 200)
    expect(middle.data.equals(content.subarray(100, 300))).toBe(true)
    expect(middle.eof).toBe(false)

    const tail = await provider.read(node, 9_900, 500)
    expect(tail.data.equals(content.subarray(9_900))).toBe(true)
    expect(tail.eof).toBe(true)

    const past = await provider.read(node, 20_000, 10)
    expect(past.data.length).toBe(0)
    expect(past.eof).toBe(true)
    expect(past.attributes.sizeBytes).toBe(10_000)
  })

  it('read sends a ranged request', async () => {
    const node = await createFile('ranged', pattern(5_000, 2))
    fake.requests.length = 0
    await provider.read(node, 1_000, 100)
    const contentRequests = fake.requests.filter((request) => request.method === 'GET' && request.query.metadata === undefined)
    expect(contentRequests).toHaveLength(1)
  })

  it('write at offsets changes only those bytes', async () => {
    const content = pattern(4_096, 3)
    const node = await createFile('offsets', content)
    const patch = Buffer.from('patched')
    await provider.write(node, 1_000, patch, 2)

    const expected = Buffer.from(content)
    patch.copy(expected, 1_000)
    expect(fake.readFile(`${ROOT}/offsets`)?.equals(expected)).toBe(true)
  })

  it('write at offset 0 keeps the rest of a longer file', async () => {
    const content = pattern(8_192, 4)
    const node = await createFile('start', content)
    const patch = Buffer.from('HEADER')
    const result = await provider.write(node, 0, patch, 2)

    const expected = Buffer.from(content)
    patch.copy(expected, 0)
    expect(result.attributes.sizeBytes).toBe(8_192)
    expect(fake.readFile(`${ROOT}/start`)?.equals(expected)).toBe(true)
  })

  it('write at offset 0 with the same first byte writes in place', async () => {
    const content = pattern(8_192, 5)
    const node = await createFile('same-first', content)
    const patch = Buffer.concat([content.subarray(0, 1), Buffer.from('rest')])
    fake.requests.length = 0
    await provider.write(node, 0, patch, 2)

    const uploads = fake.requests.filter((request) => request.method === 'PUT')
    expect(uploads).toHaveLength(1)
    expect(uploads[0].query.offset).toBe('1')
    const expected = Buffer.from(content)
    patch.copy(expected, 0)
    expect(fake.readFile(`${ROOT}/same-first`)?.equals(expected)).toBe(true)
  })

  it('write past the end fills the gap with zeros', async () => {
    const node = await createFile('sparse', Buffer.from('abc'))
    await provider.write(node, 10_000, Buffer.from('end'), 2)

    const stored = fake.readFile(`${ROOT}/sparse`)!
    expect(stored.length).toBe(10_003)
    expect(stored.subarray(0, 3).toString()).toBe('abc')
    expect(stored.subarray(3, 10_000).equals(Buffer.alloc(9_997))).toBe(true)
    expect(stored.subarray(10_000).toString()).toBe('end')

    const read = await provider.read(node, 0, 20_000)
    expect(read.data.equals(stored)).toBe(true)
    expect(read.eof).toBe(true)
  })

  it('write to a removed file is stale', async () => {
    const node = await createFile('removed', Buffer.from('x'))
    await provider.remove(root, 'removed')
    await expectCode(provider.write(node, 5, Buffer.from('y'), 2), 'STALE')
    expect(fake.exists(`${ROOT}/removed`)).toBe(false)
  })

  it('sequential writes upload only new data', async () => {
    const node = nodeOf(root, 'big', await provider.create(root, 'big', 0o644, 'guarded'))
    fake.requests.length = 0
    const chunks = 8
    for (let i = 0; i < chunks; i++) {
      await provider.write(node, i * MIB, pattern(MIB, i), 0)
    }

    const uploads = fake.requests.filter((request) => request.method === 'PUT' || request.method === 'POST')
    expect(uploads).toHaveLength(chunks)
    expect(uploads.map((request) => request.query.offset ?? '0')).toEqual(Array.from({ length: chunks }, (_, i) => String(i * MIB)))
    // No content download: only metadata requests read from the filer.
    expect(fake.requests.filter((request) => request.method === 'GET' && request.query.metadata !== 'true')).toHaveLength(0)

    const stored = fake.readFile(`${ROOT}/big`)!
    expect(stored.length).toBe(chunks * MIB)
    expect(stored.subarray(5 * MIB, 6 * MIB).equals(pattern(MIB, 5))).toBe(true)
  })

  it('fileId stays the same across writes', async () => {
    const node = await createFile('stable', pattern(100, 6))
    await provider.write(node, 0, pattern(10, 7), 2)
    await provider.write(node, 50, pattern(10, 8), 2)
    const attributes = await provider.getattr(node)
    expect(attributes.fileId).toBe(node.fileId)
    expect(attributes.generation).toBe(node.generation)
  })

  it('setattr truncates and extends', async () => {
    const content = pattern(5_000, 9)
    const node = await createFile('resize', content)

    const shorter = await provider.setattr(node, { sizeBytes: 1_000 })
    expect(shorter.sizeBytes).toBe(1_000)
    expect(fake.readFile(`${ROOT}/resize`)?.equals(content.subarray(0, 1_000))).toBe(true)

    const longer = await provider.setattr(node, { sizeBytes: 3_000 })
    expect(longer.sizeBytes).toBe(3_000)
    const stored = fake.readFile(`${ROOT}/resize`)!
    expect(stored.subarray(0, 1_000).equals(content.subarray(0, 1_000))).toBe(true)
    expect(stored.subarray(1_000).equals(Buffer.alloc(2_000))).toBe(true)

    const empty = await provider.setattr(node, { sizeBytes: 0 })
    expect(empty.sizeBytes).toBe(0)
    expect(empty.fileId).toBe(node.fileId)
    expect(fake.readFile(`${ROOT}/resize`)?.length).toBe(0)
  })

  it('setattr keeps the mode across a truncate', async () => {
    const node = nodeOf(root, 'moded', await provider.create(root, 'moded', 0o600, 'guarded'))
    await provider.write(node, 0, pattern(100, 10), 2)
    const attributes = await provider.setattr(node, { sizeBytes: 10 })
    expect(attributes.mode).toBe(0o600)
  })

  it('setattr mode works on an empty file only', async () => {
    const node = nodeOf(root, 'chmod', await provider.create(root, 'chmod', 0o644, 'guarded'))
    const changed = await provider.setattr(node, { mode: 0o600 })
    expect(changed.mode).toBe(0o600)

    await provider.write(node, 0, Buffer.from('data'), 2)
    await expectCode(provider.setattr(node, { mode: 0o640 }), 'NOTSUPP')
    const unchanged = await provider.setattr(node, { mode: 0o600 })
    expect(unchanged.mode).toBe(0o600)
  })

  it('setattr times on an empty file', async () => {
    const node = nodeOf(root, 'verifier', await provider.create(root, 'verifier', 0o600, 'exclusive'))
    const set = await provider.setattr(node, { atime: { kind: 'client', sec: 0xdeadbeef, nsec: 0 }, mtime: { kind: 'client', sec: 0x1234567, nsec: 0 } })
    expect(set.atimeSec).toBe(0xdeadbeef)
    expect(set.mtimeSec).toBe(0x1234567)
    expect(set.mode).toBe(0o600)
    expect((await provider.lookup(root, 'verifier')).mtimeSec).toBe(0x1234567)

    await provider.write(node, 0, Buffer.from('data'), 2)
    const written = await provider.getattr(node)
    expect(written.mtimeSec).toBe(Math.floor(fake.stat(`${ROOT}/verifier`)!.mtimeMs / 1000))
  })

  it('setattr times on a written file keeps the filer times', async () => {
    const node = await createFile('timed', Buffer.from('data'))
    const before = await provider.getattr(node)
    const after = await provider.setattr(node, { mtime: { kind: 'client', sec: 5, nsec: 0 } })
    expect(after.mtimeSec).toBe(before.mtimeSec)
  })

  it('create guarded and exclusive fail on a taken name', async () => {
    await createFile('taken', Buffer.from('keep'))
    await expectCode(provider.create(root, 'taken', 0o644, 'guarded'), 'EXIST')
    await expectCode(provider.create(root, 'taken', 0o644, 'exclusive'), 'EXIST')

    const unchecked = await provider.create(root, 'taken', 0o644, 'unchecked')
    expect(unchecked.sizeBytes).toBe(4)
    expect(fake.readFile(`${ROOT}/taken`)?.toString()).toBe('keep')
  })

  it('create sets the mode', async () => {
    const attributes = await provider.create(root, 'mode', 0o640, 'guarded')
    expect(attributes.mode).toBe(0o640)
    expect(attributes.type).toBe('file')
    expect(fake.stat(`${ROOT}/mode`)?.mode).toBe(0o640)
  })

  it('mkdir creates and rejects a taken name', async () => {
    const attributes = await provider.mkdir(root, 'dir', 0o750)
    expect(attributes.type).toBe('dir')
    expect(attributes.mode).toBe(0o750)
    await expectCode(provider.mkdir(root, 'dir', 0o750), 'EXIST')
  })

  it('rmdir rejects a non-empty directory', async () => {
    const dir = nodeOf(root, 'full', await provider.mkdir(root, 'full', 0o755))
    await createFile('inside', Buffer.from('x'), dir)

    await expectCode(provider.rmdir(root, 'full'), 'NOTEMPTY')
    expect(fake.exists(`${ROOT}/full/inside`)).toBe(true)

    await provider.remove(dir, 'inside')
    const removed = await provider.rmdir(root, 'full')
    expect(removed.nlink).toBe(0)
    expect(fake.exists(`${ROOT}/full`)).toBe(false)
  })

  it('remove rejects a directory', async () => {
    await provider.mkdir(root, 'adir', 0o755)
    await expectCode(provider.remove(root, 'adir'), 'ISDIR')
    expect(fake.exists(`${ROOT}/adir`)).toBe(true)
  })

  it('rmdir rejects a file', async () => {
    await createFile('afile', Buffer.from('x'))
    await expectCode(provider.rmdir(root, 'afile'), 'NOTDIR')
  })

  it('rename replaces an existing file', async () => {
    const source = await createFile('from', Buffer.from('new content'))
    await createFile('to', Buffer.from('old'))

    const replaced = await provider.rename(root, 'from', root, 'to')
    expect(replaced?.nlink).toBe(0)
    expect(fake.readFile(`${ROOT}/to`)?.toString()).toBe('new content')
    expect(fake.exists(`${ROOT}/from`)).toBe(false)

    const moved = await provider.lookup(root, 'to')
    expect(moved.fileId).toBe(source.fileId)
  })

  it('rename replaces an empty directory only', async () => {
    await provider.mkdir(root, 'a', 0o755)
    const full = nodeOf(root, 'b', await provider.mkdir(root, 'b', 0o755))
    await createFile('x', Buffer.from('x'), full)

    await expectCode(provider.rename(root, 'a', root, 'b'), 'NOTEMPTY')
    expect(fake.exists(`${ROOT}/a`)).toBe(true)

    await provider.mkdir(root, 'c', 0o755)
    const replaced = await provider.rename(root, 'a', root, 'c')
    expect(replaced?.type).toBe('dir')
    expect(fake.exists(`${ROOT}/a`)).toBe(false)
    expect(fake.exists(`${ROOT}/c`)).toBe(true)
  })

  it('rename rejects mismatched types', async () => {
    await provider.mkdir(root, 'dir', 0o755)
    await createFile('file', Buffer.from('x'))
    await expectCode(provider.rename(root, 'file', root, 'dir'), 'ISDIR')
    await expectCode(provider.rename(root, 'dir', root, 'file'), 'NOTDIR')
  })

  it('rename into itself fails', async () => {
    const dir = nodeOf(root, 'outer', await provider.mkdir(root, 'outer', 0o755))
    const inner = nodeOf(dir, 'inner', await provider.mkdir(dir, 'inner', 0o755))
    await expectCode(provider.rename(root, 'outer', inner, 'moved'), 'INVAL')
    expect(fake.exists(`${ROOT}/outer/inner`)).toBe(true)
  })

  it('rename to a directory sharing the prefix', async () => {
    await createFile('a', Buffer.from('content'))
    const prefixed = nodeOf(root, 'ab', await provider.mkdir(root, 'ab', 0o755))
    await provider.rename(root, 'a', prefixed, 'x')
    expect(fake.readFile(`${ROOT}/ab/x`)?.toString()).toBe('content')
    expect(fake.listDirectory(ROOT)).toEqual(['ab'])
  })

  it('odd names round-trip', async () => {
    const names = ['with space', 'ünïcødé 文件', 'q?mark', 'hash#tag', 'per%cent', 'a&b', 'plus+sign', '%2F', 'semi;colon']
    for (const name of names) {
      const node = await createFile(name, Buffer.from(name))
      const read = await provider.read(node, 0, 100)
      expect(read.data.toString()).toBe(name)
      expect(fake.readFile(`${ROOT}/${name}`)?.toString()).toBe(name)
    }

    const listed = await provider.readdir(root)
    expect(listed.sort()).toEqual([...names].sort())

    const dir = nodeOf(root, 'dir +?#', await provider.mkdir(root, 'dir +?#', 0o755))
    await provider.rename(root, 'plus+sign', dir, 'moved+ %')
    expect(fake.readFile(`${ROOT}/dir +?#/moved+ %`)?.toString()).toBe('plus+sign')
  })

  it('readdir and lookupAll page through large directories', async () => {
    await fake.stop()
    await setUp({}, { listingPageSize: 3 })
    const names = Array.from({ length: 10 }, (_, i) => `file-${i}`)
    for (const name of names) await createFile(name, Buffer.from(name))

    fake.requests.length = 0
    const listed = await provider.readdir(root)
    expect(listed).toEqual(names)
    const listings = fake.requests.filter((request) => request.query.limit !== undefined)
    expect(listings.length).toBeGreaterThan(1)

    const attributes = await provider.lookupAll(root, [...names, 'missing'])
    expect(attributes.slice(0, 10).map((entry) => entry?.sizeBytes)).toEqual(names.map((name) => name.length))
    expect(attributes[10]).toBeNull()
  })

  it('scan visits parents before children', async () => {
    const dir = nodeOf(root, 'd1', await provider.mkdir(root, 'd1', 0o755))
    const sub = nodeOf(dir, 'd2', await provider.mkdir(dir, 'd2', 0o755))
    await createFile('f', Buffer.from('x'), sub)

    const visited: string[] = []
    await provider.scan(root, (parent, name, attributes) => {
      const node = nodeOf(parent, name, attributes)
      visited.push(node.path())
      return node
    })
    expect(visited).toEqual(['/d1', '/d1/d2', '/d1/d2/f'])
  })

  it('symlink and link are not supported', async () => {
    const node = await createFile('target', Buffer.from('x'))
    await expectCode(provider.symlink(root, 'link', Buffer.from('target'), 0o777), 'NOTSUPP')
    await expectCode(provider.link(node, root, 'hard'), 'NOTSUPP')
    await expectCode(provider.readlink(node), 'NOTSUPP')
  })
})

describe('SeaweedFS provider with a failing filer', () => {
  afterEach(async () => {
    await fake.stop()
  })

  it('down filer fails within the timeout', async () => {
    await setUp({}, { timeoutMs: 500, retries: 2, entryCacheMs: 0 })
    fake.setDown(true)
    const started = Date.now()
    await expectCode(provider.getattr(root), 'JUKEBOX')
    expect(Date.now() - started).toBeLessThan(1_500)
  })

  it('hanging filer fails within the timeout', async () => {
    await setUp({}, { timeoutMs: 300, retries: 1 })
    const node = await createFile('slow', Buffer.from('x'))
    fake.requests.length = 0
    fake.delayMs = 5_000
    const started = Date.now()
    await expectCode(provider.read(node, 0, 1), 'JUKEBOX')
    expect(Date.now() - started).toBeLessThan(1_300)
  })

  it('unavailable filer fails after retries', async () => {
    await setUp({ downMode: 'unavailable' }, { timeoutMs: 2_000, retries: 2, entryCacheMs: 0 })
    fake.setDown(true)
    fake.requests.length = 0
    await expectCode(provider.getattr(root), 'JUKEBOX')
    expect(fake.requests).toHaveLength(3)
  })

  it('internal errors fail with io after retries', async () => {
    let failing = false
    await setUp({ fault: () => (failing ? { action: 'status', status: 500 } : undefined) }, { timeoutMs: 2_000, retries: 1, entryCacheMs: 0 })
    failing = true
    fake.requests.length = 0
    await expectCode(provider.getattr(root), 'IO')
    expect(fake.requests).toHaveLength(2)
  })

  it('failed upload is not retried', async () => {
    let failUploads = false
    await setUp({ fault: (request) => (failUploads && request.method === 'PUT' ? { action: 'status', status: 503 } : undefined) }, { retries: 3 })
    const node = nodeOf(root, 'once', await provider.create(root, 'once', 0o644, 'guarded'))
    failUploads = true
    fake.requests.length = 0
    await expectCode(provider.write(node, 10, Buffer.from('x'), 2), 'IO')
    expect(fake.requests.filter((request) => request.method === 'PUT')).toHaveLength(1)
  })

  it('transient errors are retried for reads', async () => {
    let failures = 0
    await setUp({ fault: (request) => (request.query.metadata === 'true' && failures++ < 2 ? { action: 'reset' } : undefined) }, { retries: 3, entryCacheMs: 0 })
    failures = 0
    const attributes = await provider.getattr(root)
    expect(attributes.type).toBe('dir')
    expect(failures).toBe(3)
  })
})

describe('SeaweedFS writes of one file', () => {
  beforeEach(async () => {
    await setUp()
  })

  afterEach(async () => {
    await fake.stop()
  })

  it('keep a later write behind an earlier one', async () => {
    const node = await createFile('file', Buffer.alloc(0))
    const head = pattern(32 * 1024, 1)
    const tail = pattern(32 * 1024, 2)

    // An upload at offset 0 replaces the file on the filer, so if it overtook the write of the
    // tail, the tail would be lost.
    await Promise.all([provider.write(node, head.length, tail, 2), provider.write(node, 0, head, 2)])

    expect(fake.readFile(`${ROOT}/file`)?.equals(Buffer.concat([head, tail]))).toBe(true)
  })

  it('cost two requests each when sequential', async () => {
    // The metadata response after each write is reused by the check before the next one.
    const node = await createFile('file', Buffer.from('first'))
    const before = fake.requests.length

    for (let index = 1; index <= 4; index++) await provider.write(node, index * 5, Buffer.from('again'), 2)

    expect(fake.requests.length - before).toBe(8)
    expect(fake.readFile(`${ROOT}/file`)?.toString()).toBe('first' + 'again'.repeat(4))
  })

  it('show a change by another client after the cache time', async () => {
    provider = new SeaweedFsProvider({ filerUrl: fake.url, rootPath: ROOT, logger, entryCacheMs: 50 })
    await provider.open()
    const node = await createFile('file', Buffer.from('first'))
    expect((await provider.getattr(node)).sizeBytes).toBe(5)

    const response = await fetch(`${fake.url}${ROOT}/file?offset=5`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: 'second' })
    expect(response.status).toBe(201)
    await new Promise((resolve) => setTimeout(resolve, 60))

    expect((await provider.getattr(node)).sizeBytes).toBe(11)
  })

  it('do not bring back a removed file', async () => {
    const node = await createFile('file', Buffer.from('first'))
    await provider.remove(root, 'file')

    await expectCode(provider.write(node, 5, Buffer.from('late'), 2), 'STALE')
    expect(fake.exists(`${ROOT}/file`)).toBe(false)
  })
})

describe('SeaweedFS rewrites larger than one part', () => {
  const PART = 64 * 1024
  const SIZE = 20 * PART + 5
  let failUploadsToRoot = false

  beforeEach(async () => {
    failUploadsToRoot = false
    await setUp(
      { fault: (request) => (failUploadsToRoot && request.method === 'PUT' && request.path.startsWith(`${ROOT}/`) && request.query.offset !== undefined ? { action: 'status', status: 500, body: 'disk full' } : undefined) },
      { retries: 0 }
    )
    provider = new SeaweedFsProvider({ filerUrl: fake.url, rootPath: ROOT, logger, retries: 0, rewritePartBytes: PART })
    await provider.open()
  })

  afterEach(async () => {
    await fake.stop()
  })

  it('streams a write at offset 0', async () => {
    const original = pattern(SIZE, 1)
    const node = await createFile('big.bin', original)
    const inode = (await provider.getattr(node)).fileId
    const patch = Buffer.alloc(3 * PART + 7, 0xee)

    await provider.write(node, 0, patch, 2)

    const expected = Buffer.concat([patch, original.subarray(patch.length)])
    expect(fake.readFile(`${ROOT}/big.bin`)?.equals(expected)).toBe(true)
    expect((await provider.getattr(node)).fileId).toBe(inode)
    expect(fake.listDirectory('/.aegis-node/rewrite')).toEqual([])
  })

  it('streams a shrinking truncate', async () => {
    const original = pattern(SIZE, 2)
    const node = await createFile('big.bin', original)
    const keep = 7 * PART + 3

    const attributes = await provider.setattr(node, { sizeBytes: keep })

    expect(attributes.sizeBytes).toBe(keep)
    expect(fake.readFile(`${ROOT}/big.bin`)?.equals(original.subarray(0, keep))).toBe(true)
  })

  it('keeps a copy when it fails part way', async () => {
    const original = pattern(SIZE, 3)
    const node = await createFile('big.bin', original)
    failUploadsToRoot = true

    await expectCode(provider.write(node, 0, Buffer.from([0xff]), 2), 'IO')

    const copies = fake.listDirectory('/.aegis-node/rewrite') ?? []
    expect(copies).toHaveLength(1)
    expect(fake.readFile(`/.aegis-node/rewrite/${copies[0]}`)?.equals(original)).toBe(true)
  })
})
