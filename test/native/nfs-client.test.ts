// End-to-end check of the NFS test tooling against a real NFS-Ganesha:
// the libnfs client (script and bench modes), the Debian libnfs-utils
// wrappers and the Ganesha helper itself. Ganesha failing to start fails the
// suite with the helper's message; nothing here is skipped.
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startGanesha, type GaneshaServer } from '../helpers/ganesha.js'
import {
  ensureNfsClientBuilt,
  nfsCat,
  nfsCp,
  nfsLs,
  NfsClientError,
  runNfsBench,
  runNfsScript
} from '../helpers/nfs-client.js'

let exportDir: string
let scratchDir: string
let ganesha: GaneshaServer

beforeAll(async () => {
  ensureNfsClientBuilt()
  exportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-nfs-export-'))
  scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-nfs-local-'))
  ganesha = await startGanesha({ exportDir })
})

afterAll(async () => {
  await ganesha?.stop()
  for (const dir of [exportDir, scratchDir]) {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
  }
})

describe('aegis-nfs script mode', () => {
  it('runs file operations in one session', async () => {
    const results = await runNfsScript(ganesha.url(), [
      ['mkdir', 'work dir', '0750'],
      ['create', 'work dir/a.txt', '0640'],
      ['write', 'work dir/a.txt', '0', Buffer.from('hello nfs').toString('hex')],
      ['read', 'work dir/a.txt', '6', '100'],
      ['stat', 'work dir/a.txt'],
      ['rename', 'work dir/a.txt', 'work dir/b.txt'],
      ['ls', 'work dir']
    ])

    expect(results).toHaveLength(7)
    const [mkdir, create, write, read, stat, rename, ls] = results
    expect(mkdir).toEqual({ ok: true })
    expect(create).toEqual({ ok: true })
    expect(write).toEqual({ ok: true, count: 9 })
    expect(read).toEqual({ ok: true, count: 3, eof: true, hex: Buffer.from('nfs').toString('hex') })
    expect(stat).toMatchObject({ ok: true, type: 'file', mode: 0o640, size: 9, nlink: 1, uid: 0 })
    expect(rename).toEqual({ ok: true })
    // rename keeps the inode, so the renamed file on disk has the inode stat reported.
    expect(stat.ino).toBe(fs.statSync(path.join(exportDir, 'work dir', 'b.txt')).ino)
    const names = (ls.entries as Array<{ name: string }>).map((entry) => entry.name).sort()
    expect(names).toEqual(['.', '..', 'b.txt'])

    // The server's view must match the exported directory on disk.
    expect(fs.readFileSync(path.join(exportDir, 'work dir', 'b.txt'), 'utf8')).toBe('hello nfs')
    expect(fs.statSync(path.join(exportDir, 'work dir')).mode & 0o7777).toBe(0o750)
    expect(fs.existsSync(path.join(exportDir, 'work dir', 'a.txt'))).toBe(false)

    const cleanup = await runNfsScript(ganesha.url(), [
      ['unlink', 'work dir/b.txt'],
      ['rmdir', 'work dir'],
      ['stat', 'work dir']
    ])
    expect(cleanup[0]).toEqual({ ok: true })
    expect(cleanup[1]).toEqual({ ok: true })
    expect(cleanup[2]).toMatchObject({ ok: false, errno: 2 })
    expect(fs.existsSync(path.join(exportDir, 'work dir'))).toBe(false)
  })

  it('sets links, sizes, modes and times', async () => {
    fs.writeFileSync(path.join(exportDir, 'meta.txt'), '0123456789')
    const results = await runNfsScript(ganesha.url(), [
      ['symlink', 'meta.txt', 'meta.link'],
      ['readlink', 'meta.link'],
      ['link', 'meta.txt', 'meta.hard'],
      ['truncate', 'meta.txt', '4'],
      ['chmod', 'meta.txt', '0604'],
      ['utimes', 'meta.txt', '1000000000', '250000', '1100000000', '500000'],
      ['stat', 'meta.txt']
    ])

    for (const result of results.slice(0, 6)) expect(result.ok).toBe(true)
    expect(results[1]).toEqual({ ok: true, target: 'meta.txt' })
    expect(results[6]).toMatchObject({
      type: 'file',
      mode: 0o604,
      size: 4,
      nlink: 2,
      atime: 1000000000,
      atimeNsec: 250000000,
      mtime: 1100000000,
      mtimeNsec: 500000000
    })

    const onDisk = fs.statSync(path.join(exportDir, 'meta.txt'))
    expect(onDisk.size).toBe(4)
    expect(onDisk.mode & 0o7777).toBe(0o604)
    expect(onDisk.nlink).toBe(2)
    expect(onDisk.mtimeMs).toBe(1100000000500)
    expect(fs.readlinkSync(path.join(exportDir, 'meta.link'))).toBe('meta.txt')
    expect(fs.statSync(path.join(exportDir, 'meta.hard')).ino).toBe(onDisk.ino)
  })

  it('reports NFS errors per command without stopping', async () => {
    fs.mkdirSync(path.join(exportDir, 'full'))
    fs.writeFileSync(path.join(exportDir, 'full', 'x'), 'x')
    const results = await runNfsScript(ganesha.url(), [
      ['stat', 'missing'],
      ['rmdir', 'full'],
      ['create_excl', 'full/x', '0644'],
      ['no-such-command'],
      ['stat', 'full/x']
    ])

    expect(results[0]).toMatchObject({ ok: false, errno: 2 })
    expect(results[0].error).toContain('NFS3ERR_NOENT')
    expect(results[1]).toMatchObject({ ok: false, errno: 39 })
    expect(results[2]).toMatchObject({ ok: false, errno: 17 })
    expect(results[3]).toMatchObject({ ok: false, errno: 22 })
    expect(results[4]).toMatchObject({ ok: true, type: 'file', size: 1 })
  })

  it('rejects a mount of a path that is not exported', async () => {
    const url = `nfs://127.0.0.1/not-exported?nfsport=${ganesha.port}&mountport=${ganesha.mountPort}`
    const failure = await runNfsScript(url, [['stat', '']]).catch((error: unknown) => error)

    expect(failure).toBeInstanceOf(NfsClientError)
    const details = (failure as NfsClientError).details
    expect(details.exitCode).toBe(1)
    expect(details.results[0]).toMatchObject({ ok: false, stage: 'mount', errno: 13 })
  })

  it('copies files with writefile and readfile', async () => {
    const local = path.join(scratchDir, 'upload.bin')
    const data = randomBytes(3 * 1024 * 1024 + 17)
    fs.writeFileSync(local, data)
    const downloaded = path.join(scratchDir, 'download.bin')

    const results = await runNfsScript(ganesha.url(), [
      ['writefile', 'copy.bin', local],
      ['readfile', 'copy.bin', downloaded]
    ])

    expect(results[0]).toEqual({ ok: true, bytes: data.length })
    expect(results[1]).toEqual({ ok: true, bytes: data.length })
    expect(fs.readFileSync(path.join(exportDir, 'copy.bin')).equals(data)).toBe(true)
    expect(fs.readFileSync(downloaded).equals(data)).toBe(true)
  })
})

describe('libnfs-utils wrappers', () => {
  it('copy, cat and list through Ganesha', async () => {
    const local = path.join(scratchDir, 'tool-upload.bin')
    const data = randomBytes(8 * 1024 * 1024)
    fs.writeFileSync(local, data)

    const upload = await nfsCp(local, ganesha.url('tool.bin'))
    expect(upload.code).toBe(0)
    expect(fs.readFileSync(path.join(exportDir, 'tool.bin')).equals(data)).toBe(true)

    const cat = await nfsCat(ganesha.url('tool.bin'))
    expect(cat.code).toBe(0)
    expect(cat.stdout.equals(data)).toBe(true)

    const ls = await nfsLs(ganesha.url())
    expect(ls.code).toBe(0)
    expect(ls.stdout.toString()).toMatch(/ tool\.bin$/m)
  })
})

describe('aegis-nfs bench mode', () => {
  it('writes and reads a file with requests in flight', async () => {
    const size = 8 * 1024 * 1024
    const write = await runNfsBench(ganesha.url(), 'write', {
      path: 'bench.dat',
      size,
      chunk: 256 * 1024,
      inflight: 4
    })
    expect(write).toMatchObject({ op: 'write', ok: true, bytes: size, ops: 32, complete: true })
    expect(write.peakQueueLength).toBeGreaterThan(1)
    expect(fs.statSync(path.join(exportDir, 'bench.dat')).size).toBe(size)

    const read = await runNfsBench(ganesha.url(), 'read', { path: 'bench.dat', inflight: 4 })
    expect(read).toMatchObject({ op: 'read', ok: true, bytes: size, complete: true })
  })

  it('counts getattr and readdirplus operations', async () => {
    const getattr = await runNfsBench(ganesha.url(), 'getattr', { seconds: 0.5, inflight: 2 })
    expect(getattr.ops).toBeGreaterThan(0)
    expect(getattr.opsPerSecond).toBeGreaterThan(0)

    const readdir = await runNfsBench(ganesha.url(), 'readdirplus', {
      path: 'listing',
      entries: 50,
      seconds: 0.5
    })
    expect(readdir.ops).toBeGreaterThan(0)
    expect(readdir.entries).toBe(readdir.ops * 50)
    expect(fs.readdirSync(path.join(exportDir, 'listing'))).toHaveLength(50)
  })

  it('reports a failed bench as an error', async () => {
    const failure = await runNfsBench(ganesha.url(), 'read', { path: 'absent.dat' }).catch(
      (error: unknown) => error
    )
    expect(failure).toBeInstanceOf(NfsClientError)
    expect((failure as Error).message).toContain('NFS3ERR_NOENT')
  })
})
