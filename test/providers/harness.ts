// Runs a provider the way the NFS layer does: inside a Volume, behind AegisFsal, addressed by
// handles, with a fresh RequestContext per call. Quota accounting, name checks and the node table
// are therefore part of every contract case.

import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { pino } from 'pino'
import { expect } from 'vitest'
import { RequestContext } from '../../src/fsal/context.js'
import { FsalError, type FsalErrorCode } from '../../src/fsal/errors.js'
import { AegisFsal, type CreateArguments } from '../../src/fsal/fsal.js'
import { HandleCodec } from '../../src/fsal/handle.js'
import type { FileAttributes, FsStat, SetAttributes, StableHow } from '../../src/fsal/types.js'
import { Volume } from '../../src/fsal/volume.js'
import type { StorageProvider } from '../../src/providers/provider.js'

const CLIENT_ADDRESS = '127.0.0.1'
const AGENT_UID = 1000
const AGENT_GID = 1000
const EXPORT_ID = 0x5eed
/** Bytes per READ when a case reads a whole file, so that files above 256 KiB take several READs. */
const READ_CHUNK_BYTES = 256 * 1024

export interface HarnessOptions {
  sizeLimitBytes?: number | null
  /** Key for the handle codec; pass the key of an earlier harness so that its handles still verify. */
  handleKey?: Buffer
}

export interface Entry {
  handle: Buffer
  attributes: FileAttributes
}

export interface ReadReply {
  /** A copy of the bytes read; the provider's buffer has been released. */
  data: Buffer
  eof: boolean
  attributes: FileAttributes
}

/** A directory listing as an NFS client pages through it. */
export interface PagedListing {
  /** Every entry in the order sent, "." and ".." included. */
  names: string[]
  /** Attributes of each name other than "." and "..", as READDIRPLUS sends them. */
  attributes: Map<string, FileAttributes>
  pages: number
}

function nameBytes(name: string | Buffer): Buffer {
  return typeof name === 'string' ? Buffer.from(name, 'utf8') : name
}

export class FsalHarness {
  private constructor(
    readonly fsal: AegisFsal,
    readonly volume: Volume,
    readonly handleKey: Buffer
  ) {}

  /** Opens `provider` in a new Volume and AegisFsal, as AegisNode.startLocked does. */
  static async open(provider: StorageProvider, options: HarnessOptions = {}): Promise<FsalHarness> {
    const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
    const allowedClients = new net.BlockList()
    allowedClients.addAddress(CLIENT_ADDRESS)
    const volume = new Volume(
      {
        name: 'contract',
        exportId: EXPORT_ID,
        readOnly: false,
        sizeLimitBytes: options.sizeLimitBytes ?? null,
        uid: AGENT_UID,
        gid: AGENT_GID,
        allowedClients
      },
      provider,
      logger
    )
    await volume.open()
    const handleKey = options.handleKey ?? randomBytes(32)
    const fsal = new AegisFsal('contract-node', new HandleCodec(handleKey), [volume], logger)
    return new FsalHarness(fsal, volume, handleKey)
  }

  get root(): Buffer {
    return this.fsal.handleOf(this.volume, this.volume.root)
  }

  context(procedure: string): RequestContext {
    return new RequestContext(CLIENT_ADDRESS, AGENT_UID, AGENT_GID, procedure, process.hrtime.bigint())
  }

  async close(): Promise<void> {
    await this.volume.close()
  }

  async getattr(handle: Buffer): Promise<FileAttributes> {
    return this.fsal.getattr(this.context('GETATTR'), handle)
  }

  async lookup(dir: Buffer, name: string | Buffer): Promise<Entry> {
    const result = await this.fsal.lookup(this.context('LOOKUP'), dir, nameBytes(name))
    return { handle: this.fsal.handleOf(this.volume, result.node), attributes: result.attributes }
  }

  /** Looks up each name in turn from the root. */
  async lookupPath(...names: string[]): Promise<Entry> {
    let entry: Entry = { handle: this.root, attributes: await this.getattr(this.root) }
    for (const name of names) entry = await this.lookup(entry.handle, name)
    return entry
  }

  async create(dir: Buffer, name: string | Buffer, args: CreateArguments = { how: 'unchecked' }): Promise<Entry> {
    const result = await this.fsal.create(this.context('CREATE'), dir, nameBytes(name), args)
    return { handle: this.fsal.handleOf(this.volume, result.node), attributes: result.attributes }
  }

  async createExclusive(dir: Buffer, name: string, verifier: Buffer): Promise<Entry> {
    return this.create(dir, name, { how: 'exclusive', verifier })
  }

  /** Creates a file and writes `data` into it with FILE_SYNC. */
  async createWith(dir: Buffer, name: string | Buffer, data: Buffer): Promise<Entry> {
    const entry = await this.create(dir, name)
    if (data.length > 0) await this.write(entry.handle, 0, data, 2)
    return { handle: entry.handle, attributes: await this.getattr(entry.handle) }
  }

  async mkdir(dir: Buffer, name: string | Buffer): Promise<Entry> {
    const result = await this.fsal.mkdir(this.context('MKDIR'), dir, nameBytes(name), { mode: 0o755 })
    return { handle: this.fsal.handleOf(this.volume, result.node), attributes: result.attributes }
  }

  async symlink(dir: Buffer, name: string | Buffer, target: Buffer): Promise<Entry> {
    const result = await this.fsal.symlink(this.context('SYMLINK'), dir, nameBytes(name), target, {})
    return { handle: this.fsal.handleOf(this.volume, result.node), attributes: result.attributes }
  }

  async readlink(handle: Buffer): Promise<Buffer> {
    return (await this.fsal.readlink(this.context('READLINK'), handle)).target
  }

  async link(handle: Buffer, dir: Buffer, name: string | Buffer): Promise<FileAttributes> {
    return (await this.fsal.link(this.context('LINK'), handle, dir, nameBytes(name))).attributes
  }

  async write(handle: Buffer, offset: number, data: Buffer, stable: StableHow = 0): Promise<{ count: number; committed: StableHow; after: FileAttributes }> {
    const result = await this.fsal.write(this.context('WRITE'), handle, offset, data, stable)
    return { count: result.count, committed: result.committed, after: result.after! }
  }

  async commit(handle: Buffer): Promise<void> {
    await this.fsal.commit(this.context('COMMIT'), handle)
  }

  async read(handle: Buffer, offset: number, count: number): Promise<ReadReply> {
    const result = await this.fsal.read(this.context('READ'), handle, offset, count)
    const data = Buffer.from(result.data)
    result.release?.()
    return { data, eof: result.eof, attributes: result.attributes }
  }

  /** Reads a file from offset 0 until a READ reports eof. */
  async readAll(handle: Buffer): Promise<Buffer> {
    const chunks: Buffer[] = []
    let offset = 0
    for (;;) {
      const reply = await this.read(handle, offset, READ_CHUNK_BYTES)
      chunks.push(reply.data)
      offset += reply.data.length
      if (reply.eof) return Buffer.concat(chunks)
      expect(reply.data.length, `READ at ${offset} returned no bytes without eof`).toBeGreaterThan(0)
    }
  }

  async setattr(handle: Buffer, changes: SetAttributes): Promise<FileAttributes> {
    return (await this.fsal.setattr(this.context('SETATTR'), handle, changes, null)).after!
  }

  async setSize(handle: Buffer, sizeBytes: number): Promise<FileAttributes> {
    return this.setattr(handle, { sizeBytes })
  }

  /** Removes a non-directory and returns its attributes, nlink counting the names it has left. */
  async remove(dir: Buffer, name: string | Buffer): Promise<FileAttributes> {
    return (await this.fsal.remove(this.context('REMOVE'), dir, nameBytes(name), false)).removed
  }

  async rmdir(dir: Buffer, name: string | Buffer): Promise<FileAttributes> {
    return (await this.fsal.remove(this.context('RMDIR'), dir, nameBytes(name), true)).removed
  }

  /** Renames and returns the attributes of the object the rename replaced, or null. */
  async rename(fromDir: Buffer, fromName: string | Buffer, toDir: Buffer, toName: string | Buffer): Promise<FileAttributes | null> {
    return (await this.fsal.rename(this.context('RENAME'), fromDir, nameBytes(fromName), toDir, nameBytes(toName))).replaced
  }

  async fsstat(): Promise<FsStat> {
    return (await this.fsal.fsstat(this.context('FSSTAT'), this.root)).stat
  }

  /**
   * Pages through a directory as READDIRPLUS does. Entry i of a listing has cookie i + 1, and a
   * page carries at most `entriesPerPage` entries. Each next page sends the cookie of the last
   * entry and the verifier of the listing. `betweenPages` runs after each page but the last.
   */
  async listPaged(dir: Buffer, entriesPerPage: number, betweenPages?: (page: number) => Promise<void>): Promise<PagedListing> {
    const names: string[] = []
    const attributes = new Map<string, FileAttributes>()
    let cookie = 0
    let verifier: Buffer = Buffer.alloc(8)
    for (let pages = 1; ; pages++) {
      const page = await this.fsal.readdir(this.context('READDIRPLUS'), dir, cookie, verifier)
      const total = page.listing.names.length + 2
      let index = cookie
      let sent = 0
      for (; index < total && sent < entriesPerPage; index++) {
        if (index < 2) {
          names.push(index === 0 ? '.' : '..')
          sent++
          continue
        }
        if (page.entries[index - 2] === undefined) await this.fsal.fillEntries(this.volume, page, index - 2, entriesPerPage)
        const entryAttributes = page.entries[index - 2]
        // A name removed since the listing was taken is left out, as READDIRPLUS does.
        if (entryAttributes === null || entryAttributes === undefined) continue
        const name = page.listing.names[index - 2]
        names.push(name)
        attributes.set(name, entryAttributes)
        sent++
      }
      if (index >= total) return { names, attributes, pages }

      cookie = index
      verifier = page.listing.verifier
      if (betweenPages !== undefined) await betweenPages(pages)
    }
  }

  /** Returns the names in a directory, without "." and "..", sorted. */
  async list(dir: Buffer): Promise<string[]> {
    const listing = await this.listPaged(dir, 1024)
    return listing.names.filter((name) => name !== '.' && name !== '..').sort()
  }
}

/** Asserts that `operation` rejects with an FsalError of `code` (the NFS layer maps any other error to SERVERFAULT). */
export async function expectFsalError(operation: Promise<unknown>, code: FsalErrorCode): Promise<void> {
  await expectFsalErrorOf(operation, [code])
}

/** Asserts that `operation` rejects with an FsalError whose code is one of `codes`. */
export async function expectFsalErrorOf(operation: Promise<unknown>, codes: readonly FsalErrorCode[]): Promise<void> {
  const outcome = await operation.then(
    () => ({ failed: false as const }),
    (error: unknown) => ({ failed: true as const, error })
  )
  expect(outcome.failed, `expected the operation to fail with ${codes.join(' or ')}, but it succeeded`).toBe(true)
  if (!outcome.failed) return
  expect(outcome.error, 'the error must be an FsalError').toBeInstanceOf(FsalError)
  expect(codes, `unexpected error: ${String(outcome.error)}`).toContain((outcome.error as FsalError).code)
}

/** Returns `length` bytes that differ for each `seed` and contain no zero byte, so zeros read back can only come from a gap. */
export function pattern(length: number, seed: number): Buffer {
  const data = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) data[i] = 1 + ((i * 131 + seed * 17 + (i >> 9)) % 251)
  return data
}

/** Asserts that two byte strings are equal, reporting the first offset where they differ instead of both dumps. */
export function expectBytes(actual: Buffer, expected: Buffer, label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length)
  let firstDifference = -1
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      firstDifference = i
      break
    }
  }
  expect(firstDifference, `${label}: offset of the first differing byte`).toBe(-1)
}

/** Asserts that `data` contains only zero bytes. */
export function expectZeros(data: Buffer, label: string): void {
  expectBytes(data, Buffer.alloc(data.length), label)
}

/** Runs `action` on every item, at most `concurrency` at a time. */
export async function inParallel<T>(items: readonly T[], concurrency: number, action: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]
      await action(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}
