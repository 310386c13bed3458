// Quota attacks on volumes with a size_limit: writes, truncates, links, restarts and racing
// writers must never leave more bytes in a volume than its limit, and a refused request must
// change nothing. Sizes are checked on the host, not only through NFS.
//
// The tests of each describe block run in order and share one node.

import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Nfs3Client, StableHow } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'

const KiB = 1024
const MiB = 1024 * KiB
const LIMIT = MiB

/** Returns `bytes` bytes derived from `seed`, so that the data of different writes differs. */
function pattern(bytes: number, seed: number): Buffer {
  const data = Buffer.alloc(bytes + 3)
  for (let i = 0; i < bytes; i += 4) data.writeUInt32BE((seed * 0x9e3779b1 + i) >>> 0, i)
  return data.subarray(0, bytes)
}

function digest(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

/** Sums the sizes of the regular files below `dir`, counting each inode once. */
function hostBytes(dir: string): number {
  const seen = new Set<bigint>()
  let total = 0
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile()) {
        const stat = fs.lstatSync(full, { bigint: true })
        if (seen.has(stat.ino)) continue
        seen.add(stat.ino)
        total += Number(stat.size)
      }
    }
  }
  walk(dir)
  return total
}

/** Sums the blocks that the objects below `dir` take on disk, in bytes, as `du` counts them. */
function diskBytes(dir: string): number {
  let total = 0
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name)
      total += fs.lstatSync(full).blocks * 512
      if (entry.isDirectory()) walk(full)
    }
  }
  walk(dir)
  return total
}

describe('quota on a local volume', () => {
  const dataDir = makeTempDir('aegis-quota-')
  const volumeDir = path.join(dataDir, 'volumes', 'q')
  const volumesYaml = localVolumeYaml('q', '    size_limit: 1Mi\n')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer

  async function free(): Promise<number> {
    const stat = await client.fsstat(root)
    return stat.fbytes!
  }

  async function file(name: string): Promise<Buffer> {
    return client.lookupHandle(root, name)
  }

  beforeAll(async () => {
    node = await startTestNode({ dataDir, volumesYaml })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/q')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('FSSTAT shows the limit', async () => {
    const stat = await client.fsstat(root)
    expect(stat.tbytes).toBe(LIMIT)
  })

  it('writes up to the limit succeed', async () => {
    await client.writeFile(root, 'a.bin', pattern(768 * KiB, 1))
    await client.writeFile(root, 'b.bin', pattern(256 * KiB, 2))
    expect(hostBytes(volumeDir)).toBe(LIMIT)
  })

  it('FSSTAT shows no space left', async () => {
    expect(await free()).toBe(0)
  })

  it('FSSTAT available matches free', async () => {
    const stat = await client.fsstat(root)
    expect(stat.abytes).toBe(0)
  })

  it('new file write is DQUOT', async () => {
    const created = await client.create(root, 'c.bin')
    const result = await client.write(created.handle!, 0, Buffer.from('x'), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
  })

  it('refused write left the file empty', () => {
    expect(fs.statSync(path.join(volumeDir, 'c.bin')).size).toBe(0)
  })

  it('append past limit is DQUOT', async () => {
    const result = await client.write(await file('b.bin'), 256 * KiB, pattern(4 * KiB, 3), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
  })

  it('refused append changed nothing', () => {
    expect(fs.readFileSync(path.join(volumeDir, 'b.bin')).equals(pattern(256 * KiB, 2))).toBe(true)
  })

  it('write across EOF is DQUOT', async () => {
    const before = digest(path.join(volumeDir, 'a.bin'))
    const result = await client.write(await file('a.bin'), 768 * KiB - 4 * KiB, pattern(8 * KiB, 4), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
    expect(digest(path.join(volumeDir, 'a.bin'))).toBe(before)
  })

  it('unstable write past limit is DQUOT', async () => {
    const result = await client.write(await file('b.bin'), 256 * KiB, pattern(4 * KiB, 5), StableHow.UNSTABLE)
    expect(result.status).toBe('DQUOT')
  })

  it('overwrite inside a file succeeds', async () => {
    const result = await client.write(await file('a.bin'), 0, pattern(64 * KiB, 6), StableHow.FILE_SYNC)
    expect(result.status).toBe('OK')
    expect(fs.readFileSync(path.join(volumeDir, 'a.bin')).subarray(0, 64 * KiB).equals(pattern(64 * KiB, 6))).toBe(true)
  })

  it('overwrite did not use quota', async () => {
    expect(await free()).toBe(0)
  })

  it('SETATTR size past limit is DQUOT', async () => {
    const result = await client.setattr(await file('a.bin'), { size: 768 * KiB + 1 })
    expect(result.status).toBe('DQUOT')
    expect(fs.statSync(path.join(volumeDir, 'a.bin')).size).toBe(768 * KiB)
  })

  it('sparse write far away is DQUOT', async () => {
    const result = await client.write(await file('c.bin'), 10 * 1024 * MiB, Buffer.from('x'), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
    expect(fs.statSync(path.join(volumeDir, 'c.bin')).size).toBe(0)
  })

  it('write at 2^52 is DQUOT', async () => {
    const result = await client.write(await file('c.bin'), 2 ** 52, Buffer.from('x'), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
  })

  it('CREATE with oversized size is DQUOT', async () => {
    const result = await client.create(root, 'sized.bin', { mode: 'unchecked', attributes: { size: 2 * MiB } })
    expect(result.status).toBe('DQUOT')
  })

  it('refused sized CREATE left no file', () => {
    expect(fs.existsSync(path.join(volumeDir, 'sized.bin'))).toBe(false)
  })

  it('truncate frees space', async () => {
    const result = await client.setattr(await file('b.bin'), { size: 128 * KiB })
    expect(result.status).toBe('OK')
    expect(await free()).toBe(128 * KiB)
  })

  it('REMOVE frees space', async () => {
    const removed = await client.remove(root, 'a.bin')
    expect(removed.status).toBe('OK')
    expect(await free()).toBe(896 * KiB)
  })

  it('freed space can be written', async () => {
    await client.writeFile(root, 'd.bin', pattern(896 * KiB, 7))
    expect(hostBytes(volumeDir)).toBe(LIMIT)
  })

  it('still full after refill', async () => {
    const result = await client.write(await file('d.bin'), 896 * KiB, Buffer.from('x'), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
  })

  it('RENAME over a file frees it', async () => {
    const renamed = await client.rename(root, 'b.bin', root, 'd.bin')
    expect(renamed.status).toBe('OK')
    expect(await free()).toBe(896 * KiB)
  })

  it('hard link counts once', async () => {
    const handle = await client.writeFile(root, 'h.bin', pattern(128 * KiB, 8))
    const linked = await client.link(handle, root, 'h-link.bin')
    expect(linked.status).toBe('OK')
    expect(await free()).toBe(768 * KiB)
  })

  it('removing one link frees nothing', async () => {
    await client.remove(root, 'h.bin')
    expect(await free()).toBe(768 * KiB)
  })

  it('removing last link frees space', async () => {
    await client.remove(root, 'h-link.bin')
    expect(await free()).toBe(896 * KiB)
  })

  it('usage matches host after changes', async () => {
    expect(LIMIT - (await free())).toBe(hostBytes(volumeDir))
  })

  describe('after a restart', () => {
    beforeAll(async () => {
      client.close()
      await node.stop()
      node = await startTestNode({ dataDir, volumesYaml })
      client = await Nfs3Client.connect(node.port)
      root = await client.mount('/q')
    })

    it('FSSTAT keeps the usage', async () => {
      expect(await free()).toBe(896 * KiB)
    })

    it('write past remaining space is DQUOT', async () => {
      const created = await client.create(root, 'after.bin')
      const result = await client.write(created.handle!, 0, pattern(896 * KiB + 1, 9), StableHow.FILE_SYNC)
      expect(result.status).toBe('DQUOT')
    })

    it('write within remaining space works', async () => {
      const result = await client.write(await file('after.bin'), 0, pattern(896 * KiB, 10), StableHow.FILE_SYNC)
      expect(result.status).toBe('OK')
    })

    it('limit holds after refill', async () => {
      const result = await client.write(await file('d.bin'), 128 * KiB, Buffer.from('x'), StableHow.FILE_SYNC)
      expect(result.status).toBe('DQUOT')
      expect(hostBytes(volumeDir)).toBe(LIMIT)
    })
  })
})

describe('quota of pre-existing hostPath files', () => {
  const base = makeTempDir('aegis-quota-host-')
  const hostDir = path.join(base, 'vol')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer

  beforeAll(async () => {
    // Files only, all in the volume root, so that the expected usage does not depend on whether
    // directories count.
    fs.mkdirSync(hostDir)
    fs.writeFileSync(path.join(hostDir, 'big.bin'), pattern(600 * KiB, 1))
    fs.linkSync(path.join(hostDir, 'big.bin'), path.join(hostDir, 'big-link.bin'))
    fs.writeFileSync(path.join(hostDir, 'small.bin'), pattern(300 * KiB, 2))
    node = await startTestNode({ dataDir: path.join(base, 'data'), volumesYaml: hostPathVolumeYaml('hq', hostDir, 'read-write', '    size_limit: 1Mi\n') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/hq')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(base, { recursive: true, force: true })
  })

  it('FSSTAT counts existing files once', async () => {
    const stat = await client.fsstat(root)
    expect(stat.fbytes).toBe(LIMIT - 900 * KiB)
  })

  it('write past remaining space is DQUOT', async () => {
    const created = await client.create(root, 'new.bin')
    const result = await client.write(created.handle!, 0, pattern(124 * KiB + 1, 3), StableHow.FILE_SYNC)
    expect(result.status).toBe('DQUOT')
  })

  it('write within remaining space works', async () => {
    const handle = await client.lookupHandle(root, 'new.bin')
    const result = await client.write(handle, 0, pattern(124 * KiB, 4), StableHow.FILE_SYNC)
    expect(result.status).toBe('OK')
  })

  it('host total stays at the limit', () => {
    expect(hostBytes(hostDir)).toBe(LIMIT)
  })
})

describe('quota under racing writers', () => {
  const dataDir = makeTempDir('aegis-quota-race-')
  const volumeDir = path.join(dataDir, 'volumes', 'race')
  const WRITERS = 8
  const WRITES_PER_FILE = 8
  const CHUNK = 16 * KiB

  interface Attempt {
    file: string
    offset: number
    data: Buffer
    status: string
  }

  let node: TestNode
  const attempts: Attempt[] = []

  beforeAll(async () => {
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('race', '    size_limit: 1Mi\n') })
    const setup = await Nfs3Client.connect(node.port)
    const root = await setup.mount('/race')
    await setup.writeFile(root, 'shared.bin')
    for (let writer = 0; writer < WRITERS; writer++) await setup.writeFile(root, `own-${writer}.bin`)
    setup.close()

    // Every writer opens its own connection and sends all its WRITEs before reading any reply:
    // 8 to its own file and 8 to the shared file, 2 MiB in all against a 1 MiB limit.
    const clients = await Promise.all(Array.from({ length: WRITERS }, () => Nfs3Client.connect(node.port)))
    const pending: Array<Promise<void>> = []
    for (const [writer, client] of clients.entries()) {
      const volumeRoot = await client.mount('/race')
      const own = await client.lookupHandle(volumeRoot, `own-${writer}.bin`)
      const shared = await client.lookupHandle(volumeRoot, 'shared.bin')
      for (let k = 0; k < WRITES_PER_FILE; k++) {
        const targets: Array<[string, Buffer, number]> = [
          [`own-${writer}.bin`, own, k * CHUNK],
          ['shared.bin', shared, (writer * WRITES_PER_FILE + k) * CHUNK]
        ]
        for (const [file, handle, offset] of targets) {
          const data = pattern(CHUNK, writer * 1000 + k * 10 + (file === 'shared.bin' ? 1 : 0))
          pending.push(
            client.write(handle, offset, data, StableHow.UNSTABLE).then((result) => {
              attempts.push({ file, offset, data, status: result.status })
            })
          )
        }
      }
    }
    await Promise.all(pending)
    for (const client of clients) client.close()
  })

  afterAll(async () => {
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('every WRITE got a reply', () => {
    expect(attempts.length).toBe(WRITERS * WRITES_PER_FILE * 2)
  })

  it('replies are OK or DQUOT', () => {
    const statuses = new Set(attempts.map((attempt) => attempt.status))
    expect([...statuses].filter((status) => status !== 'OK' && status !== 'DQUOT')).toEqual([])
  })

  it('some WRITEs were refused', () => {
    expect(attempts.some((attempt) => attempt.status === 'DQUOT')).toBe(true)
  })

  it('host total within the limit', () => {
    expect(hostBytes(volumeDir)).toBeLessThanOrEqual(LIMIT)
  })

  it('accepted data is on disk', () => {
    const missing = attempts
      .filter((attempt) => attempt.status === 'OK')
      .filter((attempt) => {
        const content = fs.readFileSync(path.join(volumeDir, attempt.file))
        return !content.subarray(attempt.offset, attempt.offset + CHUNK).equals(attempt.data)
      })
      .map((attempt) => `${attempt.file}@${attempt.offset}`)
    expect(missing).toEqual([])
  })

  it('refused data is not on disk', () => {
    const written = attempts
      .filter((attempt) => attempt.status === 'DQUOT')
      .filter((attempt) => {
        const content = fs.readFileSync(path.join(volumeDir, attempt.file))
        return content.subarray(attempt.offset, attempt.offset + CHUNK).equals(attempt.data)
      })
      .map((attempt) => `${attempt.file}@${attempt.offset}`)
    expect(written).toEqual([])
  })

  it('FSSTAT usage matches the host', async () => {
    const client = await Nfs3Client.connect(node.port)
    const stat = await client.fsstat(await client.mount('/race'))
    client.close()
    expect(LIMIT - stat.fbytes!).toBe(hostBytes(volumeDir))
  })
})

describe('quota of metadata', () => {
  const dataDir = makeTempDir('aegis-quota-meta-')
  const volumeDir = path.join(dataDir, 'volumes', 'meta')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer

  beforeAll(async () => {
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('meta', '    size_limit: 64Ki\n') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/meta')
    await client.writeFile(root, 'fill.bin', pattern(64 * KiB, 1))
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  // A symbolic link keeps its target in a block of its own, so a full volume that still accepts
  // long link targets grows on disk without limit.
  it('symlink targets count against limit', async () => {
    const statuses: string[] = []
    for (let i = 0; i < 32; i++) statuses.push((await client.symlink(root, `l-${i}`, 't'.repeat(4000))).status)
    expect(statuses.filter((status) => status === 'OK').length).toBe(0)
  })

  it('disk use stays near the limit', () => {
    expect(diskBytes(volumeDir)).toBeLessThanOrEqual(2 * 64 * KiB)
  })
})

// A handle of a removed file makes the node rescan the volume. WRITEs that start or finish while
// a long rescan runs must stay counted after it ends.
describe('quota during rescans', () => {
  const dataDir = makeTempDir('aegis-quota-rescan-')
  const volumeDir = path.join(dataDir, 'volumes', 'scan')
  const CHUNK = 4 * KiB
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer
  let removedHandle: Buffer
  const statuses: string[] = []

  beforeAll(async () => {
    // Enough entries that a scan yields to the event loop (it does so every 2048 objects).
    fs.mkdirSync(volumeDir, { recursive: true })
    for (let i = 0; i < 12000; i++) fs.writeFileSync(path.join(volumeDir, `empty-${i}`), '')
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('scan', '    size_limit: 1Mi\n') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/scan')
    const handles: Buffer[] = []
    for (let i = 0; i < 64; i++) handles.push(await client.writeFile(root, `w-${i}.bin`))
    // Created last, so that no later file reuses its inode number and takes its place in the node table.
    removedHandle = await client.writeFile(root, 'removed.bin')
    await client.remove(root, 'removed.bin')
    // One connection keeps 16 WRITEs in flight, each growing a file. Another sends the stale
    // handle every 20 ms, so that rescans start and end while WRITEs start and finish.
    const trigger = await Nfs3Client.connect(node.port)
    const deadline = Date.now() + 3_000
    let next = 0
    const writer = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const index = next++
        const handle = handles[index % handles.length]
        const offset = Math.floor(index / handles.length) * CHUNK
        statuses.push((await client.write(handle, offset, pattern(CHUNK, index), StableHow.UNSTABLE)).status)
      }
    }
    const triggering = async (): Promise<void> => {
      while (Date.now() < deadline) {
        await trigger.getattr(removedHandle)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    await Promise.all([...Array.from({ length: 16 }, writer), triggering()])
    trigger.close()
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('writes were refused at the limit', () => {
    expect(statuses).toContain('DQUOT')
  })

  it('host total within the limit', () => {
    expect(hostBytes(volumeDir)).toBeLessThanOrEqual(LIMIT)
  })
})

// LINK of a file racing with REMOVE of its only other name: REMOVE finds one link and frees the
// file's bytes, while LINK gives the same bytes a new name. The bytes must stay counted.
describe('quota with LINK racing REMOVE', () => {
  const dataDir = makeTempDir('aegis-quota-link-race-')
  const volumeDir = path.join(dataDir, 'volumes', 'lr')
  // Small enough that all rounds together stay below the limit when nothing goes wrong.
  const FILE_BYTES = 4 * KiB
  const ROUNDS = 80
  let node: TestNode
  let linker: Nfs3Client
  let remover: Nfs3Client
  let fillStatus = ''

  beforeAll(async () => {
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('lr', '    size_limit: 1Mi\n') })
    linker = await Nfs3Client.connect(node.port)
    remover = await Nfs3Client.connect(node.port)
    const root = await linker.mount('/lr')
    await remover.mount('/lr')

    for (let round = 0; round < ROUNDS; round++) {
      const handle = await linker.writeFile(root, `x-${round}`, pattern(FILE_BYTES, round))
      const linked = linker.link(handle, root, `y-${round}`)
      // A varying pause before REMOVE, so that some rounds hit the window between the two calls.
      const pauseUntil = process.hrtime.bigint() + BigInt((round % 20) * 20_000)
      while (process.hrtime.bigint() < pauseUntil) {
        // busy wait: the node runs in this process, so a timer would let it finish LINK first
      }
      const removed = remover.remove(root, `x-${round}`)
      await Promise.all([linked, removed])
    }

    // Fill whatever space the node still counts as free: at most twice the limit.
    for (let index = 0; index < (2 * LIMIT) / FILE_BYTES; index++) {
      const created = await linker.create(root, `fill-${index}`)
      fillStatus = (await linker.write(created.handle!, 0, pattern(FILE_BYTES, 1000 + index), StableHow.FILE_SYNC)).status
      if (fillStatus !== 'OK') break
    }
  })

  afterAll(async () => {
    linker?.close()
    remover?.close()
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('filling ends with DQUOT', () => {
    expect(fillStatus).toBe('DQUOT')
  })

  it('host total within the limit', () => {
    expect(hostBytes(volumeDir)).toBeLessThanOrEqual(LIMIT)
  })
})
