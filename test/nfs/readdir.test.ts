// READDIR and READDIRPLUS (RFC 1813, sections 3.3.16 and 3.3.17): paging with small counts,
// cookies and cookie verifiers, TOOSMALL, "." and "..", and READDIRPLUS handles.

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import type { DirEntry, Nfs3Client, ReaddirResult } from '../helpers/nfs3.js'

const BIG_ENTRIES = 5000
const ZERO_VERIFIER = Buffer.alloc(8)

function bigNames(): string[] {
  return Array.from({ length: BIG_ENTRIES }, (_, i) => `entry-${String(i).padStart(5, '0')}`)
}

/** Asserts that cookies grow strictly across the whole listing. */
function expectIncreasingCookies(entries: DirEntry[]): void {
  for (let i = 1; i < entries.length; i++) {
    expect(entries[i].cookie > entries[i - 1].cookie, `cookie of ${entries[i].name} after ${entries[i - 1].name}`).toBe(true)
  }
}

function expectEofOnlyOnLastPage(pages: ReaddirResult[]): void {
  const eofPages = pages.map((page, index) => (page.eof ? index : -1)).filter((index) => index >= 0)
  expect(eofPages).toEqual([pages.length - 1])
}

/** Reads pages until eof, continuing from `cookie` and `verifier`; returns the pages or the failing status. */
async function continueListing(nfs: Nfs3Client, dir: Buffer, cookie: bigint, verifier: Buffer, count: number): Promise<{ status: string; entries: DirEntry[] }> {
  const entries: DirEntry[] = []
  for (;;) {
    const page = await nfs.readdir(dir, cookie, verifier, count)
    if (page.status !== 'OK') return { status: page.status, entries }
    entries.push(...page.entries)
    if (page.eof) return { status: 'OK', entries }
    cookie = page.entries[page.entries.length - 1].cookie
    verifier = page.cookieverf!
  }
}

describe('readdir', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let big: Buffer

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
    const bigPath = path.join(mounted.node.dataDir, 'volumes', 'scratch', 'big')
    fs.mkdirSync(bigPath)
    for (const name of bigNames()) fs.writeFileSync(path.join(bigPath, name), '')
    big = await nfs.lookupHandle(mounted.root, 'big')
  })
  afterAll(async () => mounted.stop())

  it('READDIR pages list every name once', async () => {
    const { pages, entries } = await nfs.listAll(big, { dircount: 1024 })
    const names = entries.map((entry) => entry.name)

    expect(pages.length).toBeGreaterThan(50)
    expect(names.length).toBe(BIG_ENTRIES + 2)
    expect(new Set(names).size).toBe(names.length)
    expect([...names].filter((name) => name !== '.' && name !== '..').sort()).toEqual(bigNames())
    expectIncreasingCookies(entries)
    expectEofOnlyOnLastPage(pages)
  })

  it('READDIR pages fit in count', async () => {
    const { pages } = await nfs.listAll(big, { dircount: 1024 })
    const largest = Math.max(...pages.map((page) => page.resultBytes))
    expect(largest).toBeLessThanOrEqual(1024)
  })

  it('READDIRPLUS pages list every name once', async () => {
    const { pages, entries } = await nfs.listAll(big, { plus: true, dircount: 1024, maxcount: 2048 })
    const names = entries.map((entry) => entry.name)

    expect(pages.length).toBeGreaterThan(100)
    expect(names.length).toBe(BIG_ENTRIES + 2)
    expect(new Set(names).size).toBe(names.length)
    expect([...names].filter((name) => name !== '.' && name !== '..').sort()).toEqual(bigNames())
    expectIncreasingCookies(entries)
    expectEofOnlyOnLastPage(pages)
    expect(Math.max(...pages.map((page) => page.resultBytes))).toBeLessThanOrEqual(2048)
  })

  it('READDIRPLUS handles work with GETATTR', async () => {
    const { entries } = await nfs.listAll(big, { plus: true, dircount: 1024, maxcount: 4096 })
    const samples = [entries[0], entries[1], entries[2], entries[2500], entries[entries.length - 1]]
    for (const entry of samples) {
      expect(entry.handle, `handle of ${entry.name}`).toBeInstanceOf(Buffer)
      expect(entry.attributes?.fileid).toBe(entry.fileid)
      const attributes = await nfs.attributesOf(entry.handle!)
      expect(attributes.fileid, `GETATTR fileid of ${entry.name}`).toBe(entry.fileid)
    }
  })

  it('READDIRPLUS handle equals LOOKUP handle', async () => {
    const { entries } = await nfs.listAll(big, { plus: true, maxcount: 65536 })
    const entry = entries.find((e) => e.name === 'entry-01234')!
    const looked = await nfs.lookup(big, 'entry-01234')
    expect(entry.handle?.equals(looked.handle!)).toBe(true)
  })

  it('dot and dotdot are listed', async () => {
    const bigAttributes = await nfs.attributesOf(big)
    const rootAttributes = await nfs.attributesOf(mounted.root)
    const page = await nfs.readdir(big, 0n, ZERO_VERIFIER, 4096)
    const dot = page.entries.find((entry) => entry.name === '.')
    const dotdot = page.entries.find((entry) => entry.name === '..')
    expect(dot?.fileid).toBe(bigAttributes.fileid)
    expect(dotdot?.fileid).toBe(rootAttributes.fileid)
  })

  it('READDIRPLUS dotdot handle is the parent', async () => {
    const page = await nfs.readdirplus(big, 0n, ZERO_VERIFIER, 4096, 8192)
    const dotdot = page.entries.find((entry) => entry.name === '..')!
    const parent = await nfs.attributesOf(dotdot.handle!)
    expect(parent.fileid).toBe((await nfs.attributesOf(mounted.root)).fileid)
    expect(parent.type).toBe('DIR')
  })

  it('READDIRPLUS describes a symlink entry', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'with-link')
    await nfs.symlink(dir, 'pointer', '../big')
    const page = await nfs.readdirplus(dir, 0n, ZERO_VERIFIER, 4096, 8192)
    const entry = page.entries.find((e) => e.name === 'pointer')!
    expect(entry.attributes?.type).toBe('LNK')
    expect((await nfs.readlink(entry.handle!)).target?.toString()).toBe('../big')
  })

  it('empty directory lists only dot entries', async () => {
    const empty = await nfs.mkdirHandle(mounted.root, 'empty')
    const page = await nfs.readdir(empty, 0n, ZERO_VERIFIER, 4096)
    expect(page.status).toBe('OK')
    expect(page.entries.map((entry) => entry.name).sort()).toEqual(['.', '..'])
    expect(page.eof).toBe(true)
  })

  it('fileid matches LOOKUP attributes', async () => {
    const page = await nfs.readdir(big, 0n, ZERO_VERIFIER, 8192)
    const entry = page.entries.find((e) => e.name.startsWith('entry-'))!
    const looked = await nfs.lookup(big, entry.name)
    expect(looked.attributes?.fileid).toBe(entry.fileid)
  })

  it('READDIR count too small is TOOSMALL', async () => {
    const page = await nfs.readdir(big, 0n, ZERO_VERIFIER, 100)
    expect(page.status).toBe('TOOSMALL')
  })

  it('READDIRPLUS maxcount too small is TOOSMALL', async () => {
    const page = await nfs.readdirplus(big, 0n, ZERO_VERIFIER, 1024, 200)
    expect(page.status).toBe('TOOSMALL')
  })

  it('made-up verifier is BAD_COOKIE', async () => {
    const page = await nfs.readdir(big, 10n, Buffer.from('madeupvf'), 4096)
    expect(page.status).toBe('BAD_COOKIE')
  })

  it('cookie past the end is BAD_COOKIE', async () => {
    const first = await nfs.readdir(big, 0n, ZERO_VERIFIER, 1024)
    const page = await nfs.readdir(big, BigInt(BIG_ENTRIES + 100), first.cookieverf!, 1024)
    expect(page.status).toBe('BAD_COOKIE')
  })

  it('cookie above 2^53 is BAD_COOKIE', async () => {
    const first = await nfs.readdir(big, 0n, ZERO_VERIFIER, 1024)
    const page = await nfs.readdir(big, 1n << 60n, first.cookieverf!, 1024)
    expect(page.status).toBe('BAD_COOKIE')
  })

  it('verifier of another directory is BAD_COOKIE', async () => {
    const other = await nfs.mkdirHandle(mounted.root, 'other-dir')
    const first = await nfs.readdir(big, 0n, ZERO_VERIFIER, 1024)
    const page = await nfs.readdir(other, 1n, first.cookieverf!, 1024)
    expect(page.status).toBe('BAD_COOKIE')
  })

  it('READDIR of a file is NOTDIR', async () => {
    const file = await nfs.lookupHandle(big, 'entry-00007')
    const page = await nfs.readdir(file, 0n, ZERO_VERIFIER, 1024)
    expect(page.status).toBe('NOTDIR')
  })

  it('old verifier after change stays unique', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'changing')
    const originals = Array.from({ length: 60 }, (_, i) => `name-${String(i).padStart(2, '0')}`)
    for (const name of originals) await nfs.writeFile(dir, name)

    const first = await nfs.readdir(dir, 0n, ZERO_VERIFIER, 512)
    expect(first.eof).toBe(false)
    await nfs.writeFile(dir, 'name-added')
    expect((await nfs.remove(dir, 'name-59')).status).toBe('OK')
    // A new listing from cookie 0 takes a new snapshot. The node keeps a few older snapshots
    // after a change, so the old verifier must still continue its own listing.
    await nfs.readdir(dir, 0n, ZERO_VERIFIER, 512)

    const last = first.entries[first.entries.length - 1]
    const rest = await continueListing(nfs, dir, last.cookie, first.cookieverf!, 512)
    expect(rest.status).toBe('OK')
    const names = [...first.entries, ...rest.entries].map((entry) => entry.name)
    expect(new Set(names).size).toBe(names.length)
    for (const name of originals.slice(0, 59)) expect(names, `listing contains ${name}`).toContain(name)
    expect(names).not.toContain('name-59')
  })

  it('evicted verifier is BAD_COOKIE', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'evicting')
    for (let i = 0; i < 30; i++) await nfs.writeFile(dir, `file-${i}`)
    const first = await nfs.readdir(dir, 0n, ZERO_VERIFIER, 512)
    expect(first.eof).toBe(false)

    // Each change followed by a fresh listing adds a snapshot; old ones are dropped after a few.
    for (let i = 0; i < 10; i++) {
      await nfs.writeFile(dir, `later-${i}`)
      await nfs.readdir(dir, 0n, ZERO_VERIFIER, 512)
    }
    const last = first.entries[first.entries.length - 1]
    const page = await nfs.readdir(dir, last.cookie, first.cookieverf!, 512)
    expect(page.status).toBe('BAD_COOKIE')
  })

  it('unchanged directory keeps its verifier', async () => {
    const first = await nfs.readdir(big, 0n, ZERO_VERIFIER, 1024)
    const second = await nfs.readdir(big, 0n, ZERO_VERIFIER, 1024)
    expect(second.cookieverf?.equals(first.cookieverf!)).toBe(true)
  })

  it('new name appears after a change', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'growing')
    await nfs.writeFile(dir, 'one')
    const before = await nfs.listAll(dir)
    await nfs.writeFile(dir, 'two')
    const after = await nfs.listAll(dir)
    expect(before.entries.map((entry) => entry.name)).not.toContain('two')
    expect(after.entries.map((entry) => entry.name)).toContain('two')
  })
})
