// READ, WRITE and COMMIT (RFC 1813, sections 3.3.6, 3.3.7 and 3.3.21): eof, short reads,
// transfer limits, stability levels and the write verifier.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { Nfs3Client, Proc, StableHow } from '../helpers/nfs3.js'
import { localVolumeYaml, startTestNode } from '../helpers/node.js'

function pattern(length: number, seed = 7): Buffer {
  const bytes = Buffer.alloc(length)
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff
  return bytes
}

describe('read', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  const contents = pattern(10_000)
  let file: Buffer

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
    file = await nfs.writeFile(mounted.root, 'ten-thousand', contents)
  })
  afterAll(async () => mounted.stop())

  it('eof only on the last chunk', async () => {
    const first = await nfs.read(file, 0, 4096)
    const second = await nfs.read(file, 4096, 4096)
    const last = await nfs.read(file, 8192, 4096)
    expect(first.eof).toBe(false)
    expect(second.eof).toBe(false)
    expect(last.status).toBe('OK')
    expect(last.eof).toBe(true)
    expect(last.count).toBe(10_000 - 8192)
    expect(last.data?.equals(contents.subarray(8192))).toBe(true)
  })

  it('count equals bytes returned', async () => {
    const result = await nfs.read(file, 9000, 4096)
    expect(result.count).toBe(1000)
    expect(result.data?.length).toBe(1000)
  })

  it('read ending exactly at size is eof', async () => {
    const result = await nfs.read(file, 0, 10_000)
    expect(result.eof).toBe(true)
    expect(result.data?.equals(contents)).toBe(true)
  })

  it('read starting at EOF is empty eof', async () => {
    const result = await nfs.read(file, 10_000, 100)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(0)
    expect(result.eof).toBe(true)
  })

  it('read past EOF is empty eof', async () => {
    const result = await nfs.read(file, 50_000, 100)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(0)
    expect(result.eof).toBe(true)
  })

  it('read far past 2^53 is empty eof', async () => {
    const result = await nfs.read(file, 1n << 60n, 100)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(0)
    expect(result.eof).toBe(true)
  })

  it('empty file read is eof', async () => {
    const empty = await nfs.writeFile(mounted.root, 'empty-file')
    const result = await nfs.read(empty, 0, 4096)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(0)
    expect(result.eof).toBe(true)
  })

  it('zero-count mid-file read not eof', async () => {
    const result = await nfs.read(file, 100, 0)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(0)
    expect(result.eof).toBe(false)
  })

  it('odd-length READ keeps the stream aligned', async () => {
    const odd = await nfs.read(file, 0, 5)
    expect(odd.count).toBe(5)
    expect(odd.data?.equals(contents.subarray(0, 5))).toBe(true)
    const next = await nfs.read(file, 5, 3)
    expect(next.data?.equals(contents.subarray(5, 8))).toBe(true)
    expect((await nfs.getattr(file)).status).toBe('OK')
  })

  it('READ reply length multiple of four', async () => {
    const reply = await nfs.callNfs(Proc.READ, (w) => {
      w.opaque(file)
      w.u64(0)
      w.u32(7)
    })
    expect(reply.record.length % 4).toBe(0)
  })

  it('read carries file attributes', async () => {
    const result = await nfs.read(file, 0, 10)
    expect(result.attributes?.size).toBe(10_000)
    expect(result.attributes?.type).toBe('REG')
  })

  it('READ of a directory is ISDIR', async () => {
    const result = await nfs.read(mounted.root, 0, 100)
    expect(result.status).toBe('ISDIR')
  })

  it('READ above rtmax is clamped', async () => {
    const info = await nfs.fsinfo(mounted.root)
    const rtmax = info.rtmax!
    const large = pattern(rtmax + 100_000, 3)
    const handle = await nfs.writeFile(mounted.root, 'larger-than-rtmax', large)
    const result = await nfs.read(handle, 0, rtmax * 2)
    expect(result.status).toBe('OK')
    expect(result.count).toBeLessThanOrEqual(rtmax)
    expect(result.count).toBeGreaterThan(0)
    expect(result.eof).toBe(false)
    expect(result.data?.equals(large.subarray(0, result.count!))).toBe(true)
  })
})

describe('write', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
  })
  afterAll(async () => mounted.stop())

  it.each([
    ['UNSTABLE', StableHow.UNSTABLE],
    ['DATA_SYNC', StableHow.DATA_SYNC],
    ['FILE_SYNC', StableHow.FILE_SYNC]
  ])('%s write commits at least that', async (_name, stable) => {
    const handle = await nfs.writeFile(mounted.root, `stable-${stable}`)
    const result = await nfs.write(handle, 0, Buffer.from('payload'), stable)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(7)
    expect(result.committed).toBeGreaterThanOrEqual(stable)
    expect(result.committed).toBeLessThanOrEqual(StableHow.FILE_SYNC)
  })

  it('verifier same across writes and COMMIT', async () => {
    const handle = await nfs.writeFile(mounted.root, 'verifier')
    const verifiers: Buffer[] = []
    for (const stable of [StableHow.UNSTABLE, StableHow.DATA_SYNC, StableHow.FILE_SYNC, StableHow.UNSTABLE]) {
      const result = await nfs.write(handle, 0, Buffer.from('abc'), stable)
      verifiers.push(result.verifier!)
    }
    const committed = await nfs.commit(handle, 0, 0)
    expect(committed.status).toBe('OK')
    for (const verifier of verifiers) expect(verifier.equals(verifiers[0])).toBe(true)
    expect(committed.verifier?.equals(verifiers[0])).toBe(true)
  })

  it('data reads back after UNSTABLE and COMMIT', async () => {
    const handle = await nfs.writeFile(mounted.root, 'unstable-data')
    const data = pattern(200_000)
    expect((await nfs.write(handle, 0, data, StableHow.UNSTABLE)).status).toBe('OK')
    expect((await nfs.commit(handle)).status).toBe('OK')
    expect((await nfs.readFile(handle)).equals(data)).toBe(true)
  })

  it('write past EOF fills zeros', async () => {
    const handle = await nfs.writeFile(mounted.root, 'sparse', 'head')
    expect((await nfs.write(handle, 10_000, Buffer.from('tail'))).status).toBe('OK')
    const data = await nfs.readFile(handle)
    expect(data.length).toBe(10_004)
    expect(data.subarray(0, 4).toString()).toBe('head')
    expect(data.subarray(4, 10_000).every((byte) => byte === 0)).toBe(true)
    expect(data.subarray(10_000).toString()).toBe('tail')
  })

  it('write wcc shows sizes before and after', async () => {
    const handle = await nfs.writeFile(mounted.root, 'wcc-write', '12345')
    const result = await nfs.write(handle, 5, Buffer.from('6789'))
    expect(result.wcc.before?.size).toBe(5)
    expect(result.wcc.after?.size).toBe(9)
  })

  it('zero-byte write succeeds', async () => {
    const handle = await nfs.writeFile(mounted.root, 'zero-write', 'abc')
    const result = await nfs.write(handle, 0, Buffer.alloc(0))
    expect(result.status).toBe('OK')
    expect(result.count).toBe(0)
    expect(result.wcc.after?.size).toBe(3)
  })

  it('WRITE to a directory is ISDIR', async () => {
    const result = await nfs.write(mounted.root, 0, Buffer.from('x'))
    expect(result.status).toBe('ISDIR')
  })

  it('WRITE above wtmax is a short write', async () => {
    const info = await nfs.fsinfo(mounted.root)
    const wtmax = info.wtmax!
    const handle = await nfs.writeFile(mounted.root, 'above-wtmax')
    const data = pattern(wtmax + 4096, 11)
    const result = await nfs.write(handle, 0, data)
    expect(result.status).toBe('OK')
    expect(result.count).toBeGreaterThan(0)
    expect(result.count).toBeLessThanOrEqual(wtmax)
    const back = await nfs.readFile(handle)
    expect(back.equals(data.subarray(0, result.count!))).toBe(true)
  })

  it('WRITE beyond maxfilesize is FBIG', async () => {
    const info = await nfs.fsinfo(mounted.root)
    const handle = await nfs.writeFile(mounted.root, 'too-far')
    const result = await nfs.write(handle, info.maxfilesize! + 1n, Buffer.from('x'))
    expect(['FBIG', 'INVAL']).toContain(result.status)
  })

  it('COMMIT with a 64-bit offset is OK', async () => {
    const handle = await nfs.writeFile(mounted.root, 'commit-far', 'data')
    const reply = await nfs.callNfs(Proc.COMMIT, (w) => {
      w.opaque(handle)
      w.u64big(1n << 62n)
      w.u32(0)
    })
    expect(reply.body.u32()).toBe(0)
  })

  it('pipelined writes land at their offsets', async () => {
    const handle = await nfs.writeFile(mounted.root, 'pipelined-writes')
    const block = 4096
    const writes = Array.from({ length: 32 }, (_, i) => nfs.write(handle, i * block, Buffer.alloc(block, i + 1), StableHow.UNSTABLE))
    const results = await Promise.all(writes)
    expect(results.every((result) => result.status === 'OK')).toBe(true)
    const data = await nfs.readFile(handle)
    expect(data.length).toBe(32 * block)
    for (let i = 0; i < 32; i++) expect(data.subarray(i * block, (i + 1) * block).every((byte) => byte === i + 1), `block ${i}`).toBe(true)
  })

  it('COMMIT of a file is OK', async () => {
    const handle = await nfs.writeFile(mounted.root, 'commit-me', 'data')
    const result = await nfs.commit(handle, 0, 4)
    expect(result.status).toBe('OK')
    expect(result.wcc.after?.size).toBe(4)
  })
})

describe('write verifier', () => {
  it('changes after a restart', async () => {
    const first = await startTestNode({ volumesYaml: localVolumeYaml('scratch') })
    const dataDir = first.dataDir
    let nfs = await Nfs3Client.connect(first.port)
    let root = await nfs.mount('/scratch')
    const handle = await nfs.writeFile(root, 'restart-verifier')
    const before = (await nfs.write(handle, 0, Buffer.from('a'), StableHow.UNSTABLE)).verifier!
    nfs.close()
    await first.stop()

    const second = await startTestNode({ volumesYaml: localVolumeYaml('scratch'), dataDir })
    try {
      nfs = await Nfs3Client.connect(second.port)
      root = await nfs.mount('/scratch')
      const after = (await nfs.write(handle, 1, Buffer.from('b'), StableHow.UNSTABLE)).verifier!
      const committed = (await nfs.commit(handle)).verifier!
      expect(after.equals(before)).toBe(false)
      expect(committed.equals(after)).toBe(true)
    } finally {
      nfs.close()
      await second.stop()
    }
  })
})
