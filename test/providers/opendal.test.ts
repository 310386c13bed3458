// Staging in the OpenDAL provider, over the fs service in a temporary directory. Unstable writes
// stay local until COMMIT, a stable write or the idle upload, and reads see them before that. A
// staging file left by a crash is uploaded at the next open.

import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Operator } from 'opendal'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FsalError } from '../../src/fsal/errors.js'
import { FsalNode } from '../../src/fsal/node.js'
import type { FileAttributes } from '../../src/fsal/types.js'
import { OpenDalProvider, type OpenDalProviderOptions } from '../../src/providers/opendal/provider.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })

let baseDir: string
let backendRoot: string
let stateDir: string
let provider: OpenDalProvider
let root: FsalNode

async function openProvider(options: Partial<OpenDalProviderOptions> = {}): Promise<void> {
  provider = new OpenDalProvider({ scheme: 'fs', options: { root: backendRoot }, stateDir, logger, ...options })
  const attributes = await provider.open()
  root = new FsalNode(attributes.fileId, attributes.generation, 'dir', null, '')
}

function nodeOf(parent: FsalNode, name: string, attributes: FileAttributes): FsalNode {
  return new FsalNode(attributes.fileId, attributes.generation, attributes.type, parent, name)
}

async function createFile(name: string): Promise<FsalNode> {
  return nodeOf(root, name, await provider.create(root, name, 0o644, 'guarded'))
}

/** Reads the object through a second Operator over the same root, around the provider. */
async function backendContent(name: string): Promise<Buffer | null> {
  const other = new Operator('fs', { root: backendRoot })
  try {
    return await other.read(name)
  } catch {
    return null
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('OpenDAL provider staging', () => {
  beforeEach(async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-'))
    backendRoot = join(baseDir, 'root')
    stateDir = join(baseDir, 'state')
  })

  afterEach(async () => {
    await provider?.close()
    await rm(baseDir, { recursive: true, force: true })
  })

  it('serves unstable writes to reads before they are uploaded', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    const file = await createFile('file')

    const result = await provider.write(file, 0, Buffer.from('hello'), 0)
    await provider.write(file, 10, Buffer.from('world'), 0)

    expect(result.committed).toBe(0)
    expect((await backendContent('file'))?.length).toBe(0)
    const read = await provider.read(file, 0, 100)
    expect(read.data).toEqual(Buffer.concat([Buffer.from('hello'), Buffer.alloc(5), Buffer.from('world')]))
    expect(read.eof).toBe(true)
    expect((await provider.getattr(file)).sizeBytes).toBe(15)
  })

  it('uploads on COMMIT', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    const file = await createFile('file')
    await provider.write(file, 0, Buffer.from('committed data'), 0)

    const attributes = await provider.commit(file)

    expect(attributes.sizeBytes).toBe(14)
    expect(await backendContent('file')).toEqual(Buffer.from('committed data'))
    expect(await readdir(join(stateDir, 'staging'))).toEqual([])
  })

  it('uploads a FILE_SYNC write before it returns', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    const file = await createFile('file')

    const result = await provider.write(file, 0, Buffer.from('stable'), 2)

    expect(result.committed).toBe(2)
    expect(await backendContent('file')).toEqual(Buffer.from('stable'))
  })

  it('stages the current content before the first write to an existing object', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    const file = await createFile('file')
    await provider.write(file, 0, Buffer.from('0123456789'), 2)

    await provider.write(file, 3, Buffer.from('abc'), 0)
    await provider.commit(file)

    expect(await backendContent('file')).toEqual(Buffer.from('012abc6789'))
  })

  it('uploads in parts when the service takes a writer in chunks', async () => {
    await openProvider({ idleUploadMs: 60_000, uploadChunkBytes: 1024 })
    const file = await createFile('file')
    const data = Buffer.alloc(5_000)
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) % 251

    await provider.write(file, 0, data, 0)
    await provider.commit(file)

    expect(await backendContent('file')).toEqual(data)
  })

  it('uploads after the idle time', async () => {
    await openProvider({ idleUploadMs: 50 })
    const file = await createFile('file')

    await provider.write(file, 0, Buffer.from('idle upload'), 0)

    await waitFor(async () => (await backendContent('file'))?.equals(Buffer.from('idle upload')) === true, 5_000)
    await waitFor(async () => (await readdir(join(stateDir, 'staging'))).length === 0, 5_000)
  })

  it('sends staged data to the new name after a rename', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    const file = await createFile('before')
    await provider.write(file, 0, Buffer.from('moved'), 0)

    await provider.rename(root, 'before', root, 'after')
    const moved = nodeOf(root, 'after', await provider.lookup(root, 'after'))
    await provider.commit(moved)

    expect(moved.fileId).toBe(file.fileId)
    expect(await backendContent('after')).toEqual(Buffer.from('moved'))
    expect(await backendContent('before')).toBeNull()
  })

  it('uploads a staging file left by a crash at the next open', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    const file = await createFile('file')
    await provider.write(file, 0, Buffer.from('first'), 2)
    // A crash: the provider is dropped without close(), and its staged data sits on disk.
    await writeFile(join(stateDir, 'staging', String(file.fileId)), 'recovered after a crash')
    const crashed = provider

    await openProvider({ idleUploadMs: 60_000 })

    expect(await backendContent('file')).toEqual(Buffer.from('recovered after a crash'))
    expect(await readdir(join(stateDir, 'staging'))).toEqual([])
    const reopened = nodeOf(root, 'file', await provider.lookup(root, 'file'))
    expect(reopened.fileId).toBe(file.fileId)
    await crashed.close()
  })

  it('keeps staged data of an unknown file id', async () => {
    await openProvider({ idleUploadMs: 60_000 })
    await provider.close()
    await writeFile(join(stateDir, 'staging', '999999'), 'orphan')

    await openProvider({ idleUploadMs: 60_000 })

    expect(await readFile(join(stateDir, 'staging', '999999'), 'utf8')).toBe('orphan')
  })

  it('keeps file ids across a restart and a rename', async () => {
    await openProvider()
    const file = await createFile('file')
    await provider.rename(root, 'file', root, 'renamed')
    await provider.close()

    await openProvider()

    expect((await provider.lookup(root, 'renamed')).fileId).toBe(file.fileId)
    const error = await provider.getattr(file).then(
      () => null,
      (caught: unknown) => caught
    )
    expect((error as FsalError).code).toBe('STALE')
  })
})

/** An Operator over the fs root whose calls are counted by method name. */
function countingOperator(counts: Map<string, number>, readSizes: number[]): Operator {
  const operator = new Operator('fs', { root: backendRoot })
  return new Proxy(operator, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        counts.set(String(property), (counts.get(String(property)) ?? 0) + 1)
        const result = value.apply(target, args)
        if (property === 'read') void Promise.resolve(result).then((data) => readSizes.push((data as Buffer).length), () => {})
        return result
      }
    }
  })
}

describe('OpenDAL provider requests', () => {
  const counts = new Map<string, number>()
  const readSizes: number[] = []

  beforeEach(async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-'))
    backendRoot = join(baseDir, 'root')
    stateDir = join(baseDir, 'state')
    counts.clear()
    readSizes.length = 0
  })

  afterEach(async () => {
    await provider?.close()
    await rm(baseDir, { recursive: true, force: true })
  })

  it('refuses to move an unreachable key', async () => {
    // A key with "\\" has no NFS name: a directory move would leave it behind, so it is refused.
    const memory = new Operator('memory', {})
    await openProvider({ scheme: 'memory', options: {}, operator: memory })
    const dir = nodeOf(root, 'dir', await provider.mkdir(root, 'dir', 0o755))
    await memory.write('dir/back\\slash', Buffer.from('kept'))
    await memory.write('dir/plain', Buffer.from('plain'))
    expect(await provider.readdir(dir)).toEqual(['plain'])

    await expect(provider.rename(root, 'dir', root, 'moved')).rejects.toMatchObject({ code: 'NOTSUPP' })
    expect((await memory.read('dir/back\\slash')).toString()).toBe('kept')
    expect((await memory.read('dir/plain')).toString()).toBe('plain')
    expect((await memory.list('/')).map((entry) => entry.path())).not.toContain('moved/')
  })

  it('truncates to 0 without reading the object', async () => {
    await openProvider({ operator: countingOperator(counts, readSizes) })
    const file = await createFile('big')
    await provider.write(file, 0, Buffer.alloc(3 * 1024 * 1024, 7), 2)
    counts.clear()

    const attributes = await provider.setattr(file, { sizeBytes: 0 })

    expect(attributes.sizeBytes).toBe(0)
    expect(counts.get('read') ?? 0).toBe(0)
    expect((await backendContent('big'))?.length).toBe(0)
  })

  it('stages only the kept bytes, in parts', async () => {
    await openProvider({ operator: countingOperator(counts, readSizes), uploadChunkBytes: 256 * 1024 })
    const file = await createFile('big')
    const content = Buffer.alloc(3 * 1024 * 1024)
    for (let index = 0; index < content.length; index++) content[index] = index % 251
    await provider.write(file, 0, content, 2)
    readSizes.length = 0

    await provider.setattr(file, { sizeBytes: 1024 * 1024 + 5 })
    await new Promise((resolve) => setImmediate(resolve))

    expect(readSizes.reduce((sum, size) => sum + size, 0)).toBe(1024 * 1024 + 5)
    expect(Math.max(...readSizes)).toBe(256 * 1024)
    expect((await backendContent('big'))?.equals(content.subarray(0, 1024 * 1024 + 5))).toBe(true)
  })

  it('asks for metadata once for a run of reads', async () => {
    await openProvider({ operator: countingOperator(counts, readSizes) })
    const file = await createFile('data')
    await provider.write(file, 0, Buffer.alloc(64 * 1024, 1), 2)
    counts.clear()

    for (let offset = 0; offset < 64 * 1024; offset += 4096) await provider.read(file, offset, 4096)

    expect(counts.get('read')).toBe(16)
    expect(counts.get('stat') ?? 0).toBeLessThanOrEqual(1)
  })

  it('sees a change around it after the cache time', async () => {
    await openProvider({ statCacheMs: 50 })
    const file = await createFile('data')
    await provider.write(file, 0, Buffer.from('12345'), 2)
    expect((await provider.getattr(file)).sizeBytes).toBe(5)

    await writeFile(join(backendRoot, 'data'), Buffer.from('1234567890'))
    await new Promise((resolve) => setTimeout(resolve, 60))

    expect((await provider.getattr(file)).sizeBytes).toBe(10)
  })
})

describe('OpenDAL fs volumes on the host', () => {
  let outside: string

  beforeEach(async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-'))
    backendRoot = join(baseDir, 'root')
    stateDir = join(baseDir, 'state')
    outside = join(baseDir, 'outside')
    await mkdir(backendRoot)
    await mkdir(outside)
    await writeFile(join(outside, 'secret.txt'), 'host secret')
    await openProvider({ hostRoot: backendRoot })
  })

  afterEach(async () => {
    await provider?.close()
    await rm(baseDir, { recursive: true, force: true })
  })

  async function expectDenied(promise: Promise<unknown>): Promise<void> {
    const error = await promise.then(
      () => null,
      (caught: unknown) => caught
    )
    expect(error).toBeInstanceOf(FsalError)
    expect((error as FsalError).code).toBe('ACCES')
  }

  it('refuses a host link to a directory outside', async () => {
    await symlink(outside, join(backendRoot, 'linked'))

    await expectDenied(provider.lookup(root, 'linked'))
  })

  it('refuses a host link to a file outside', async () => {
    await symlink(join(outside, 'secret.txt'), join(backendRoot, 'secret.txt'))

    await expectDenied(provider.lookup(root, 'secret.txt'))
  })

  it('hides a link to outside in lookupAll, not the listing', async () => {
    await writeFile(join(backendRoot, 'plain.txt'), 'plain')
    await symlink(outside, join(backendRoot, 'linked'))

    const attributes = await provider.lookupAll(root, ['linked', 'plain.txt'])

    expect(attributes[0]).toBeNull()
    expect(attributes[1]?.sizeBytes).toBe(5)
  })

  it('refuses a create under a linked directory', async () => {
    const dir = nodeOf(root, 'dir', await provider.mkdir(root, 'dir', 0o755))
    await rm(join(backendRoot, 'dir'), { recursive: true })
    await symlink(outside, join(backendRoot, 'dir'))

    await expectDenied(provider.create(dir, 'planted', 0o644, 'guarded'))
    expect(await readdir(outside)).toEqual(['secret.txt'])
  })

  it('follows a host link that stays inside', async () => {
    await writeFile(join(backendRoot, 'real.txt'), 'inside')
    await symlink(join(backendRoot, 'real.txt'), join(backendRoot, 'alias.txt'))

    expect((await provider.lookup(root, 'alias.txt')).sizeBytes).toBe(6)
  })

  it('writes files and directories only the node user can read', async () => {
    const file = await createFile('file')
    await provider.write(file, 0, Buffer.from('data'), 2)
    await provider.mkdir(root, 'dir', 0o777)

    expect((await stat(join(backendRoot, 'file'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(backendRoot, 'dir'))).mode & 0o777).toBe(0o700)
  })
})
