// End to end through real third-party NFS clients: Debian's libnfs-utils and a client built on
// the libnfs C library, against a node serving a hostPath and a local volume.

import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'
import { nfsCat, nfsCp, nfsLs, runNfsScript } from '../helpers/nfs-client.js'

const MiB = 1024 * 1024

describe('libnfs clients against aegis-node', () => {
  let node: TestNode
  let hostDir: string
  let work: string

  beforeAll(async () => {
    hostDir = makeTempDir('aegis-host-')
    fs.writeFileSync(path.join(hostDir, 'from-host.txt'), 'written on the host\n')
    node = await startTestNode({
      volumesYaml: localVolumeYaml('scratch', '    size_limit: 512Mi\n') + hostPathVolumeYaml('shared', hostDir, 'read-write')
    })
    work = makeTempDir('aegis-local-')
  })

  afterAll(async () => {
    await node.stop()
  })

  it('copies 64 MiB up and down byte-exact', async () => {
    const source = path.join(work, 'upload.bin')
    fs.writeFileSync(source, randomBytes(64 * MiB))
    const upload = await nfsCp(source, node.url('scratch', '/big.bin'))
    expect(upload.stderr).toBe('')
    expect(upload.code).toBe(0)

    const stored = path.join(node.dataDir, 'volumes/scratch/big.bin')
    expect(fs.statSync(stored).size).toBe(64 * MiB)

    const target = path.join(work, 'download.bin')
    const download = await nfsCp(node.url('scratch', '/big.bin'), target)
    expect(download.code).toBe(0)
    const digest = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex')
    expect(digest(target)).toBe(digest(source))
  })

  it('reads a host file with nfs-cat', async () => {
    const result = await nfsCat(node.url('shared', '/from-host.txt'))
    expect(result.code).toBe(0)
    expect(result.stdout.toString()).toBe('written on the host\n')
  })

  it('lists a directory with nfs-ls', async () => {
    fs.mkdirSync(path.join(hostDir, 'sub'))
    fs.writeFileSync(path.join(hostDir, 'sub/a file with spaces.txt'), 'x')
    const result = await nfsLs(node.url('shared', '/sub'))
    expect(result.code).toBe(0)
    const text = result.stdout.toString()
    expect(text).toContain('a file with spaces.txt')
    expect(text).toMatch(/1000\s+1000/)
  })

  it('reports a missing file', async () => {
    const result = await nfsCat(node.url('shared', '/absent.txt'))
    expect(result.code).not.toBe(0)
  })

  it('reports a missing export', async () => {
    const result = await nfsLs(node.url('nope'))
    expect(result.code).not.toBe(0)
  })

  it('copies into a subdirectory', async () => {
    fs.mkdirSync(path.join(hostDir, 'deep/er'), { recursive: true })
    const source = path.join(work, 'small.txt')
    fs.writeFileSync(source, 'small\n')
    const result = await nfsCp(source, node.url('shared', '/deep/er/small.txt'))
    expect(result.code).toBe(0)
    expect(fs.readFileSync(path.join(hostDir, 'deep/er/small.txt'), 'utf8')).toBe('small\n')
  })

  it('runs metadata operations via libnfs', async () => {
    const results = await runNfsScript(node.url('shared'), [
      ['mkdir', '/made', '755'],
      ['create', '/made/f.txt', '644'],
      ['write', '/made/f.txt', '0', Buffer.from('hello world').toString('hex')],
      ['stat', '/made/f.txt'],
      ['rename', '/made/f.txt', '/made/g.txt'],
      ['truncate', '/made/g.txt', '5'],
      ['read', '/made/g.txt', '0', '100'],
      ['symlink', 'g.txt', '/made/link'],
      ['readlink', '/made/link'],
      ['link', '/made/g.txt', '/made/hard'],
      ['stat', '/made/hard'],
      ['chmod', '/made/g.txt', '600'],
      ['stat', '/made/g.txt'],
      ['rmdir', '/made'],
      ['unlink', '/made/link'],
      ['unlink', '/made/hard'],
      ['unlink', '/made/g.txt'],
      ['rmdir', '/made'],
      ['stat', '/made']
    ])
    const [mkdir, create, write, stat, rename, truncate, read, symlink, readlink, link, statHard, chmod, statMode, rmdirFull, , , , rmdir, statGone] = results
    expect(mkdir.ok).toBe(true)
    expect(create.ok).toBe(true)
    expect(write.ok).toBe(true)
    expect(stat.size).toBe(11)
    expect(stat.uid).toBe(1000)
    expect(stat.gid).toBe(1000)
    expect(rename.ok).toBe(true)
    expect(truncate.ok).toBe(true)
    expect(read.hex).toBe(Buffer.from('hello').toString('hex'))
    expect(symlink.ok).toBe(true)
    expect(readlink.target).toBe('g.txt')
    expect(link.ok).toBe(true)
    expect(statHard.nlink).toBe(2)
    expect(chmod.ok).toBe(true)
    expect(statMode.mode).toBe(0o600)
    expect(rmdirFull.ok).toBe(false)
    expect(rmdirFull.errno).toBe(39) // ENOTEMPTY
    expect(rmdir.ok).toBe(true)
    expect(statGone.errno).toBe(2)
    expect(fs.existsSync(path.join(hostDir, 'made'))).toBe(false)
  })
})
