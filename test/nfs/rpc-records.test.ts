// Record marking over TCP (RFC 5531, section 11): fragments, pipelined calls, records above
// nfs.max_record_bytes and garbage on the wire.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { decode, encode, Proc } from '../helpers/nfs3.js'
import { MOUNT_PROGRAM, NFS_PROGRAM, RpcClient, recordOf } from '../helpers/rpc-client.js'

const MAX_RECORD_BYTES = 64 * 1024

/** Deterministic pseudo-random bytes (xorshift32), so that a failing round can be replayed. */
function seededBytes(seed: number, length: number): Buffer {
  let state = seed >>> 0 || 1
  const bytes = Buffer.alloc(length)
  for (let i = 0; i < length; i++) {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    bytes[i] = state & 0xff
  }
  return bytes
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Builds a fragment header: the length, with the last-fragment bit when `last`. */
function fragmentHeader(length: number, last: boolean): Buffer {
  const header = Buffer.alloc(4)
  header.writeUInt32BE(((last ? 0x8000_0000 : 0) | length) >>> 0)
  return header
}

/** Returns true when a new connection still gets a reply to NULL. */
async function serverAnswers(port: number): Promise<boolean> {
  const probe = await RpcClient.connect(port)
  try {
    const reply = await probe.call(NFS_PROGRAM, 3, 0)
    return reply.replyStat === 0 && reply.stat === 0
  } finally {
    probe.close()
  }
}

describe('rpc records', () => {
  let mounted: MountedNode

  beforeAll(async () => {
    mounted = await startMounted({ nfsYaml: '  max_record_bytes: 64Ki\n' })
  })
  afterAll(async () => mounted.stop())

  it('call split into five fragments works', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const reply = await client.call(NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(mounted.root), { fragments: 5 })
    expect(reply.stat).toBe(0)
    expect(decode.getattr(reply.body).attributes?.type).toBe('DIR')
    client.close()
  })

  it('empty leading fragment is allowed', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const { xid, body } = client.encodeCall(NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(mounted.root))
    const pending = client.reply(xid)
    client.sendRaw(Buffer.concat([fragmentHeader(0, false), fragmentHeader(body.length, true), body]))
    const reply = await pending
    expect(reply.stat).toBe(0)
    expect(decode.getattr(reply.body).status).toBe('OK')
    client.close()
  })

  it('empty fragments sent alone', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    client.socket.setNoDelay(true)
    // Each header arrives in its own read, with nothing else buffered: an empty fragment that
    // continues a record, then an empty record.
    client.sendRaw(fragmentHeader(0, false))
    await delay(50)
    client.sendRaw(fragmentHeader(0, true))
    await delay(50)
    const { xid, body } = client.encodeCall(NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(mounted.root))
    const pending = client.reply(xid)
    client.sendRaw(recordOf(body, 1))
    const reply = await pending
    expect(reply.stat).toBe(0)
    expect(decode.getattr(reply.body).status).toBe('OK')
    client.close()
  })

  it('call sent byte by byte works', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const { xid, body } = client.encodeCall(NFS_PROGRAM, 3, Proc.GETATTR, encode.getattr(mounted.root))
    const pending = client.reply(xid)
    const record = recordOf(body, 3)
    client.socket.setNoDelay(true)
    for (const byte of record) {
      client.sendRaw(Buffer.from([byte]))
      await delay(0)
    }
    const reply = await pending
    expect(reply.stat).toBe(0)
    expect(decode.getattr(reply.body).status).toBe('OK')
    client.close()
  })

  it('sixteen pipelined calls matched by xid', async () => {
    const writer = mounted.nfs
    const handles: Buffer[] = []
    for (let i = 0; i < 16; i++) handles.push(await writer.writeFile(mounted.root, `pipelined-${i}`, `contents of file ${i} `.repeat(i + 1)))

    const client = await RpcClient.connect(mounted.node.port)
    const calls = handles.map((handle) => client.encodeCall(NFS_PROGRAM, 3, Proc.READ, encode.read(handle, 0, 4096)))
    const pending = calls.map((call) => client.reply(call.xid))
    client.sendRaw(Buffer.concat(calls.map((call) => recordOf(call.body))))
    const replies = await Promise.all(pending)

    for (let i = 0; i < 16; i++) {
      expect(replies[i].xid).toBe(calls[i].xid)
      const result = decode.read(replies[i].body)
      expect(result.status).toBe('OK')
      expect(result.data?.toString()).toBe(`contents of file ${i} `.repeat(i + 1))
    }
    client.close()
  })

  it('pipelined calls of both programs replied', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const calls = [
      client.encodeCall(MOUNT_PROGRAM, 3, 0, () => {}),
      client.encodeCall(NFS_PROGRAM, 3, Proc.FSINFO, encode.fsinfo(mounted.root)),
      client.encodeCall(MOUNT_PROGRAM, 3, 1, (w) => w.string('/scratch')),
      client.encodeCall(NFS_PROGRAM, 3, 0, () => {})
    ]
    const pending = calls.map((call) => client.reply(call.xid))
    client.sendRaw(Buffer.concat(calls.map((call) => recordOf(call.body, 2))))
    const replies = await Promise.all(pending)
    expect(replies.map((reply) => reply.stat)).toEqual([0, 0, 0, 0])
    expect(decode.fsinfo(replies[1].body).status).toBe('OK')
    client.close()
  })

  it('oversized record closes connection', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    client.sendRaw(Buffer.concat([fragmentHeader(MAX_RECORD_BYTES + 1, true), Buffer.alloc(64)]))
    expect(await client.waitClosed(5000)).toBe(true)
    expect(await serverAnswers(mounted.node.port)).toBe(true)
  })

  it('oversized fragment total closes connection', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const half = MAX_RECORD_BYTES / 2 + 8
    client.sendRaw(Buffer.concat([fragmentHeader(half, false), Buffer.alloc(half)]))
    client.sendRaw(Buffer.concat([fragmentHeader(half, true), Buffer.alloc(16)]))
    expect(await client.waitClosed(5000)).toBe(true)
    expect(await serverAnswers(mounted.node.port)).toBe(true)
  })

  it('endless empty fragments close connection', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    client.sendRaw(Buffer.concat(Array.from({ length: 5000 }, () => fragmentHeader(0, false))))
    expect(await client.waitClosed(5000)).toBe(true)
    expect(await serverAnswers(mounted.node.port)).toBe(true)
  })

  it('record at the maximum is served', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const { xid, body } = client.encodeCall(NFS_PROGRAM, 3, 0, () => {})
    // Trailing bytes after NULL's (empty) arguments are ignored; the record is exactly the maximum.
    const padded = Buffer.concat([body, Buffer.alloc(MAX_RECORD_BYTES - body.length)])
    const pending = client.reply(xid)
    client.sendRaw(recordOf(padded))
    const reply = await pending
    expect(reply.stat).toBe(0)
    client.close()
  })

  it('WRITE of wtmax fits the record limit', async () => {
    const nfs = mounted.nfs
    const info = await nfs.fsinfo(mounted.root)
    expect(info.wtmax).toBeLessThan(MAX_RECORD_BYTES)
    expect(info.rtmax).toBeLessThan(MAX_RECORD_BYTES)
    const handle = await nfs.writeFile(mounted.root, 'wtmax-write')
    const data = Buffer.alloc(info.wtmax!, 0x5a)
    const result = await nfs.write(handle, 0, data)
    expect(result.status).toBe('OK')
    expect(result.count).toBe(info.wtmax)
    const read = await nfs.read(handle, 0, info.rtmax!)
    expect(read.count).toBe(Math.min(info.rtmax!, info.wtmax!))
  })

  it('connection survives a malformed record', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    client.sendRaw(recordOf(Buffer.from([1, 2, 3, 4, 0, 0, 0, 0])))
    const reply = await client.call(NFS_PROGRAM, 3, 0)
    expect(reply.stat).toBe(0)
    client.close()
  })

  it('reply message sent to server is ignored', async () => {
    const client = await RpcClient.connect(mounted.node.port)
    const fakeReply = Buffer.alloc(24)
    fakeReply.writeUInt32BE(0x1234, 0)
    fakeReply.writeUInt32BE(1, 4) // REPLY
    client.sendRaw(recordOf(fakeReply))
    const reply = await client.call(NFS_PROGRAM, 3, 0)
    expect(reply.stat).toBe(0)
    client.close()
  })

  it('random garbage never stops the server', async () => {
    for (let round = 0; round < 20; round++) {
      const client = await RpcClient.connect(mounted.node.port)
      // Odd rounds frame the garbage as a small record so that it reaches the call parser.
      const garbage = seededBytes(round + 1, 16 + round * 97)
      if (round % 2 === 1) client.sendRaw(recordOf(garbage))
      else client.sendRaw(garbage)
      await delay(5)
      client.close()
    }
    expect(await serverAnswers(mounted.node.port)).toBe(true)
  })

  it('garbage call arguments never stop server', async () => {
    for (let round = 0; round < 20; round++) {
      const client = await RpcClient.connect(mounted.node.port)
      const procedure = round % 22
      const { body } = client.encodeCall(NFS_PROGRAM, 3, procedure, (w) => w.fixed(seededBytes(1000 + round, 4 + round * 13)))
      client.sendRaw(recordOf(body))
      await delay(5)
      client.close()
    }
    expect(await serverAnswers(mounted.node.port)).toBe(true)
  })
})
