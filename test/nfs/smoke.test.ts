import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RpcClient, MOUNT_PROGRAM, NFS_PROGRAM } from '../helpers/rpc-client.js'
import { localVolumeYaml, startTestNode, type TestNode } from '../helpers/node.js'

describe('rpc smoke', () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startTestNode({ volumesYaml: localVolumeYaml('scratch') })
  })
  afterAll(async () => node.stop())

  it('mounts and gets attributes', async () => {
    const client = await RpcClient.connect(node.port)
    const mnt = await client.call(MOUNT_PROGRAM, 3, 1, (w) => w.string('/scratch'))
    expect(mnt.stat).toBe(0)
    expect(mnt.body.u32()).toBe(0)
    const handle = Buffer.from(mnt.body.opaque(64))
    const attr = await client.call(NFS_PROGRAM, 3, 1, (w) => w.opaque(handle))
    expect(attr.body.u32()).toBe(0)
    expect(attr.body.u32()).toBe(2)
    client.close()
  })
})
