// Namespace changes sent together on one connection, so that they would interleave inside the
// node if it let them: the node table must stay a tree and the quota must not lose bytes.

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Nfs3Client, Proc, encode } from '../helpers/nfs3.js'
import { localVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'
import { NFS_PROGRAM, recordOf } from '../helpers/rpc-client.js'

const KiB = 1024

/** Sends several calls in one TCP write and waits for all replies. */
async function together(client: Nfs3Client, calls: Array<{ procedure: number; args: ReturnType<typeof encode.rename> }>): Promise<void> {
  const encoded = calls.map((call) => client.rpc.encodeCall(NFS_PROGRAM, 3, call.procedure, call.args))
  const replies = encoded.map((call) => client.rpc.reply(call.xid))
  client.rpc.sendRaw(Buffer.concat(encoded.map((call) => recordOf(call.body))))
  await Promise.all(replies)
}

/** Bytes of regular files below `dir` on the host. */
function fileBytes(dir: string): number {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) total += fileBytes(full)
    else if (entry.isFile()) total += fs.statSync(full).size
  }
  return total
}

describe('racing renames', () => {
  const dataDir = makeTempDir('aegis-races-')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer

  beforeAll(async () => {
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('races') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/races')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
  })

  it('never record a directory inside itself', async () => {
    for (let round = 0; round < 30; round++) {
      const parent = await client.mkdirHandle(root, `p${round}`)
      const moving = await client.mkdirHandle(parent, 'x')
      const sub = await client.mkdirHandle(moving, 'sub')
      await client.writeFile(parent, 'f', 'file')
      await together(client, [
        { procedure: Proc.RENAME, args: encode.rename(parent, 'x', parent, 'x2') },
        { procedure: Proc.RENAME, args: encode.rename(parent, 'f', parent, 'x') },
        { procedure: Proc.RENAME, args: encode.rename(parent, 'x', sub, 'y') }
      ])
      const result = await client.getattr(sub)
      expect(result.status, `round ${round}`).toBe('OK')
    }
  })
})

describe('quota under racing namespace changes', () => {
  const dataDir = makeTempDir('aegis-races-quota-')
  const volumeDir = path.join(dataDir, 'volumes', 'q')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer

  beforeAll(async () => {
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('q', '    size_limit: 1Mi\n') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/q')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
  })

  it('two renames onto one name free it once', async () => {
    await client.writeFile(root, 'resident', Buffer.alloc(512 * KiB, 1))
    for (let round = 0; round < 20; round++) {
      await client.writeFile(root, 'a', Buffer.alloc(256 * KiB, 2))
      await client.writeFile(root, 'b', 'b')
      await client.writeFile(root, 'c', 'c')
      await together(client, [
        { procedure: Proc.RENAME, args: encode.rename(root, 'b', root, 'a') },
        { procedure: Proc.RENAME, args: encode.rename(root, 'c', root, 'a') }
      ])
    }
    // Fill until the node refuses: the host must then hold no more than the limit.
    for (let i = 0; i < 64; i++) {
      const result = await client.create(root, `fill-${i}`, { mode: 'unchecked' })
      if (result.status !== 'OK') break
      const written = await client.write(result.handle!, 0, Buffer.alloc(64 * KiB, 3))
      if (written.status !== 'OK') break
    }
    expect(fileBytes(volumeDir)).toBeLessThanOrEqual(1024 * KiB)
  })

  it('RMDIR of a grown directory frees its charge only', async () => {
    const grown = await client.mkdirHandle(root, 'grown')
    const longName = (i: number) => `${String(i).padStart(6, '0')}-${'n'.repeat(200)}`
    for (let i = 0; i < 600; i++) await client.writeFile(grown, longName(i))
    for (let i = 0; i < 600; i++) await client.remove(grown, longName(i))
    expect((await client.rmdir(root, 'grown')).status).toBe('OK')
    for (let i = 0; i < 64; i++) {
      const result = await client.create(root, `after-${i}`, { mode: 'unchecked' })
      if (result.status !== 'OK') break
      const written = await client.write(result.handle!, 0, Buffer.alloc(64 * KiB, 4))
      if (written.status !== 'OK') break
    }
    expect(fileBytes(volumeDir)).toBeLessThanOrEqual(1024 * KiB)
  })
})
