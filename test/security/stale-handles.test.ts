// A handle of an object missing from the node table makes the node walk the whole volume to look for the
// object under another name. A client must not be able to make the node repeat that walk on
// demand: each walk reads every directory of the volume, so it costs the node far more than the
// request costs the client.
//
// A walk is observed on the host: reading a directory sets its access time again once the test
// has moved that time back to 1970 (the file system is mounted relatime or strictatime).

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Nfs3Client, StableHow } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'

describe('stale handle rescans', () => {
  const base = makeTempDir('aegis-stale-')
  const vol = path.join(base, 'vol')
  const deepDir = path.join(vol, 'deep', 'a', 'b')
  const ROUNDS = 10
  let node: TestNode
  let client: Nfs3Client
  const walked: boolean[] = []
  const statuses: string[] = []

  /** Moves the access time of the deepest directory back to 1970, keeping its modification time. */
  function resetAccessTime(): void {
    fs.utimesSync(deepDir, 0, fs.statSync(deepDir).mtime)
  }

  beforeAll(async () => {
    fs.mkdirSync(deepDir, { recursive: true })
    fs.writeFileSync(path.join(deepDir, 'leaf.txt'), 'leaf\n')
    node = await startTestNode({ dataDir: path.join(base, 'data'), volumesYaml: hostPathVolumeYaml('st', vol, 'read-write') })
    client = await Nfs3Client.connect(node.port)
    const root = await client.mount('/st')
    const target = await client.writeFile(root, 'w.txt', 'x')
    // Removed last, so that no later file reuses its inode number.
    const removed = await client.writeFile(root, 'gone.txt', 'x')
    await client.remove(root, 'gone.txt')

    // Each round is one cheap change and one request with the stale handle, all within two seconds.
    for (let round = 0; round < ROUNDS; round++) {
      resetAccessTime()
      await client.write(target, 0, Buffer.from([round]), StableHow.UNSTABLE)
      statuses.push((await client.getattr(removed)).status)
      walked.push(fs.statSync(deepDir).atimeMs > 0)
    }
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(base, { recursive: true, force: true })
  })

  it('stale handle gets STALE', () => {
    expect(new Set(statuses)).toEqual(new Set(['STALE']))
  })

  it('first stale handle walks the volume', () => {
    expect(walked[0]).toBe(true)
  })

  it('later stale handles do not', () => {
    expect(walked.slice(1).filter((value) => value).length).toBe(0)
  })
})
