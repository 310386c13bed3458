// A seaweedfs volume served over NFS end to end: the libnfs tools and the libnfs test client on
// one side, the node in the middle, and the fake filer (the filer's HTTP API) on the other.

import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nfsCat, nfsCp, nfsLs, runNfsScript } from '../helpers/nfs-client.js'
import { makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'
import { startFakeFiler, type FakeFiler } from '../helpers/seaweedfs-fake.js'

let filer: FakeFiler
let node: TestNode

beforeAll(async () => {
  filer = await startFakeFiler()
  node = await startTestNode({
    volumesYaml: `  - name: weed
    type: seaweedfs
    config:
      filer_url: ${filer.url}
      path: /volumes/weed
    mount_path: /workspace/weed
    access_mode: read-write
    size_limit: 64Mi
`
  })
})

afterAll(async () => {
  await node?.stop()
  await filer?.stop()
})

describe('seaweedfs volume over NFS', () => {
  it('uploads and downloads byte-exact with nfs-cp and nfs-cat', async () => {
    const local = path.join(makeTempDir(), 'data.bin')
    const content = randomBytes(8 * 1024 * 1024 + 17)
    fs.writeFileSync(local, content)

    const upload = await nfsCp(local, node.url('weed', '/data.bin'))
    expect(upload.code, upload.stderr).toBe(0)
    expect(filer.readFile('/volumes/weed/data.bin')?.equals(content)).toBe(true)

    const download = await nfsCat(node.url('weed', '/data.bin'))
    expect(download.code, download.stderr).toBe(0)
    expect(download.stdout.equals(content)).toBe(true)
  })

  it('lists, renames and removes with names the filer URL syntax would misread', async () => {
    const odd = '/a?op=append #1 é.txt'
    const results = await runNfsScript(node.url('weed'), [
      ['mkdir', '/dir', '755'],
      ['create', odd, '644'],
      ['write', odd, '0', Buffer.from('hello').toString('hex')],
      ['rename', odd, '/dir/moved.txt'],
      ['read', '/dir/moved.txt', '0', '5'],
      ['rmdir', '/dir'],
      ['ls', '/dir']
    ])
    expect(results.slice(0, 5).map((result) => result.ok), JSON.stringify(results)).toEqual([true, true, true, true, true])
    expect(JSON.stringify(results[4])).toContain(Buffer.from('hello').toString('hex'))
    expect(results[5]).toMatchObject({ ok: false, errno: 39 })
    expect(filer.readFile('/volumes/weed/dir/moved.txt')?.toString()).toBe('hello')
    expect(filer.exists('/volumes/weed/a?op=append #1 é.txt')).toBe(false)

    const listing = await nfsLs(node.url('weed', '/dir'))
    expect(listing.stdout.toString()).toContain('moved.txt')
  })

  it('gives the client an error, not a hang, while the filer is down', async () => {
    filer.setDown(true)
    try {
      const started = Date.now()
      const results = await runNfsScript(node.url('weed'), [['stat', '/data.bin']], { timeoutMs: 60_000 }).catch((error: Error) => [{ ok: false, error: error.message }])
      expect(results[0].ok).toBe(false)
      expect(Date.now() - started).toBeLessThan(30_000)
    } finally {
      filer.setDown(false)
    }
    const again = await runNfsScript(node.url('weed'), [['stat', '/data.bin']])
    expect(again[0]).toMatchObject({ ok: true, size: 8 * 1024 * 1024 + 17 })
  }, 60_000)
})

// Runs only when SEAWEEDFS_FILER_URL names a real filer (the docker compose cluster has one):
// the same upload, download and rename through NFS, checked through NFS alone.
const realFiler = process.env.SEAWEEDFS_FILER_URL
describe.skipIf(realFiler === undefined)('seaweedfs volume on a real filer', () => {
  let realNode: TestNode
  const volumePath = `/aegis-node-test/${Date.now()}-${process.pid}`

  beforeAll(async () => {
    realNode = await startTestNode({
      volumesYaml: `  - name: real
    type: seaweedfs
    config:
      filer_url: ${realFiler}
      path: ${volumePath}
    mount_path: /workspace/real
    access_mode: read-write
`
    })
  })

  afterAll(async () => {
    await realNode?.stop()
  })

  it('uploads, downloads, renames and removes', async () => {
    const local = path.join(makeTempDir(), 'data.bin')
    const content = randomBytes(3 * 1024 * 1024 + 5)
    fs.writeFileSync(local, content)
    expect((await nfsCp(local, realNode.url('real', '/data.bin'))).code).toBe(0)
    const download = await nfsCat(realNode.url('real', '/data.bin'))
    expect(download.stdout.equals(content)).toBe(true)
    const results = await runNfsScript(realNode.url('real'), [
      ['rename', '/data.bin', '/moved.bin'],
      ['stat', '/moved.bin'],
      ['unlink', '/moved.bin']
    ])
    expect(results.map((result) => result.ok)).toEqual([true, true, true])
    expect(results[1].size).toBe(content.length)
  })
})
