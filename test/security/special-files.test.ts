// Special files planted on the host inside a volume: a client must not be able to make the node
// wait on them or read through them.

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Nfs3Client } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'

describe('FIFO planted on the host', () => {
  const base = makeTempDir('aegis-fifo-')
  const vol = path.join(base, 'vol')
  let node: TestNode
  let client: Nfs3Client
  let root: Buffer

  beforeAll(async () => {
    fs.mkdirSync(vol)
    execFileSync('mkfifo', [path.join(vol, 'pipe')])
    node = await startTestNode({ dataDir: path.join(base, 'data'), volumesYaml: hostPathVolumeYaml('fifo', vol, 'read-write') })
    client = await Nfs3Client.connect(node.port)
    root = await client.mount('/fifo')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(base, { recursive: true, force: true })
  })

  it('unchecked CREATE over it fails fast', async () => {
    const result = await client.create(root, 'pipe', { mode: 'unchecked' })
    expect(result.status).not.toBe('OK')
  })

  it('READ of it is INVAL', async () => {
    const found = await client.lookup(root, 'pipe')
    expect(found.status).toBe('OK')
    const read = await client.read(found.handle!, 0, 16)
    expect(read.status).toBe('INVAL')
  })

  it('server still answers', async () => {
    expect((await client.getattr(root)).status).toBe('OK')
  })
})
