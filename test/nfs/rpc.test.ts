// ONC RPC message handling (RFC 5531): program, version and procedure dispatch, argument
// decoding errors, RPC version and credential checks.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { XdrWriter } from '../../src/nfs/xdr.js'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { decode, Proc } from '../helpers/nfs3.js'
import { MOUNT_PROGRAM, NFS_PROGRAM, RpcClient, recordOf } from '../helpers/rpc-client.js'

const MSG_ACCEPTED = 0
const MSG_DENIED = 1
const SUCCESS = 0
const PROG_UNAVAIL = 1
const PROG_MISMATCH = 2
const PROC_UNAVAIL = 3
const GARBAGE_ARGS = 4
const RPC_MISMATCH = 0
const AUTH_ERROR = 1
const AUTH_BADCRED = 1
const AUTH_REJECTEDCRED = 2
const AUTH_TOOWEAK = 5

/** Builds a call body by hand, for credentials the RpcClient does not produce. */
function handmadeCall(xid: number, flavor: number, credentialBody: Buffer, program = NFS_PROGRAM, procedure = 0): Buffer {
  const w = new XdrWriter(128, 0)
  w.u32(xid)
  w.u32(0) // CALL
  w.u32(2)
  w.u32(program)
  w.u32(3)
  w.u32(procedure)
  w.u32(flavor)
  w.opaque(credentialBody)
  w.u32(0)
  w.u32(0)
  return Buffer.from(w.bytes())
}

function authSysBody(machineName: string, uid: number, gid: number, gids: number[]): Buffer {
  const w = new XdrWriter(128, 0)
  w.u32(0)
  w.string(machineName)
  w.u32(uid)
  w.u32(gid)
  w.u32(gids.length)
  for (const g of gids) w.u32(g)
  return Buffer.from(w.bytes())
}

describe('rpc dispatch', () => {
  let mounted: MountedNode
  let client: RpcClient

  beforeAll(async () => {
    mounted = await startMounted()
    client = await RpcClient.connect(mounted.node.port)
  })
  afterAll(async () => {
    client.close()
    await mounted.stop()
  })

  it('NFS NULL succeeds with empty results', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, 0)
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(SUCCESS)
    expect(reply.body.remaining).toBe(0)
  })

  it('MOUNT NULL succeeds with empty results', async () => {
    const reply = await client.call(MOUNT_PROGRAM, 3, 0)
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(SUCCESS)
    expect(reply.body.remaining).toBe(0)
  })

  it('unknown program is PROG_UNAVAIL', async () => {
    const reply = await client.call(100099, 1, 0)
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(PROG_UNAVAIL)
  })

  it.each([2, 4])('NFS version %i is PROG_MISMATCH 3..3', async (version) => {
    const reply = await client.call(NFS_PROGRAM, version, 0)
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(PROG_MISMATCH)
    expect(reply.body.u32()).toBe(3)
    expect(reply.body.u32()).toBe(3)
  })

  it('MOUNT version 1 is PROG_MISMATCH 3..3', async () => {
    const reply = await client.call(MOUNT_PROGRAM, 1, 0)
    expect(reply.stat).toBe(PROG_MISMATCH)
    expect(reply.body.u32()).toBe(3)
    expect(reply.body.u32()).toBe(3)
  })

  it.each([22, 99, 0xffff_ffff])('NFS procedure %i is PROC_UNAVAIL', async (procedure) => {
    const reply = await client.call(NFS_PROGRAM, 3, procedure)
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(PROC_UNAVAIL)
  })

  it('MOUNT procedure 6 is PROC_UNAVAIL', async () => {
    const reply = await client.call(MOUNT_PROGRAM, 3, 6)
    expect(reply.stat).toBe(PROC_UNAVAIL)
  })

  it('GETATTR without a handle is GARBAGE_ARGS', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, Proc.GETATTR)
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(GARBAGE_ARGS)
  })

  it('handle longer than 64 bytes is GARBAGE_ARGS', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, Proc.GETATTR, (w) => w.opaque(Buffer.alloc(65)))
    expect(reply.stat).toBe(GARBAGE_ARGS)
  })

  it('truncated LOOKUP name is GARBAGE_ARGS', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, Proc.LOOKUP, (w) => {
      w.opaque(mounted.root)
      w.u32(40) // a 40-byte name follows, but only 4 bytes are sent
      w.u32(0x61626364)
    })
    expect(reply.stat).toBe(GARBAGE_ARGS)
  })

  it('short WRITE data is GARBAGE_ARGS', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, Proc.WRITE, (w) => {
      w.opaque(mounted.root)
      w.u64(0)
      w.u32(100)
      w.u32(2)
      w.u32(100)
      w.fixed(Buffer.alloc(8))
    })
    expect(reply.stat).toBe(GARBAGE_ARGS)
  })

  it('MNT without a path is GARBAGE_ARGS', async () => {
    const reply = await client.call(MOUNT_PROGRAM, 3, 1)
    expect(reply.stat).toBe(GARBAGE_ARGS)
  })

  it('undefined createmode3 is GARBAGE_ARGS', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, Proc.CREATE, (w) => {
      w.opaque(mounted.root)
      w.string('bad-mode')
      w.u32(3)
    })
    expect(reply.stat).toBe(GARBAGE_ARGS)
  })

  it('RPC version 3 is RPC_MISMATCH 2..2', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, 0, () => {}, { rpcVersion: 3 })
    expect(reply.replyStat).toBe(MSG_DENIED)
    expect(reply.stat).toBe(RPC_MISMATCH)
    expect(reply.body.u32()).toBe(2)
    expect(reply.body.u32()).toBe(2)
  })

  it('AUTH_NONE call is accepted', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, Proc.GETATTR, (w) => w.opaque(mounted.root), { credential: { flavor: 0 } })
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(SUCCESS)
    expect(decode.getattr(reply.body).status).toBe('OK')
  })

  it('credential flavor 6 is AUTH_ERROR', async () => {
    const xid = client.newXid()
    const pending = client.reply(xid)
    client.sendRaw(recordOf(handmadeCall(xid, 6, Buffer.alloc(0))))
    const reply = await pending
    expect(reply.replyStat).toBe(MSG_DENIED)
    expect(reply.stat).toBe(AUTH_ERROR)
    expect([AUTH_BADCRED, AUTH_REJECTEDCRED, AUTH_TOOWEAK]).toContain(reply.body.u32())
  })

  it('AUTH_SYS with 17 groups is AUTH_BADCRED', async () => {
    const xid = client.newXid()
    const pending = client.reply(xid)
    const gids = Array.from({ length: 17 }, (_, i) => 100 + i)
    client.sendRaw(recordOf(handmadeCall(xid, 1, authSysBody('test', 0, 0, gids))))
    const reply = await pending
    expect(reply.replyStat).toBe(MSG_DENIED)
    expect(reply.stat).toBe(AUTH_ERROR)
    expect(reply.body.u32()).toBe(AUTH_BADCRED)
  })

  it('AUTH_SYS with 16 groups is accepted', async () => {
    const xid = client.newXid()
    const pending = client.reply(xid)
    const gids = Array.from({ length: 16 }, (_, i) => 100 + i)
    client.sendRaw(recordOf(handmadeCall(xid, 1, authSysBody('test', 0, 0, gids))))
    const reply = await pending
    expect(reply.replyStat).toBe(MSG_ACCEPTED)
    expect(reply.stat).toBe(SUCCESS)
  })

  it('256-byte machine name is AUTH_BADCRED', async () => {
    const xid = client.newXid()
    const pending = client.reply(xid)
    client.sendRaw(recordOf(handmadeCall(xid, 1, authSysBody('m'.repeat(256), 0, 0, []))))
    const reply = await pending
    expect(reply.replyStat).toBe(MSG_DENIED)
    expect(reply.stat).toBe(AUTH_ERROR)
    expect(reply.body.u32()).toBe(AUTH_BADCRED)
  })

  it('AUTH_SYS with a truncated body is AUTH_BADCRED', async () => {
    const xid = client.newXid()
    const pending = client.reply(xid)
    client.sendRaw(recordOf(handmadeCall(xid, 1, authSysBody('test', 0, 0, []).subarray(0, 10))))
    const reply = await pending
    expect(reply.replyStat).toBe(MSG_DENIED)
    expect(reply.stat).toBe(AUTH_ERROR)
    expect(reply.body.u32()).toBe(AUTH_BADCRED)
  })

  it('reply echoes the xid of the call', async () => {
    const reply = await client.call(NFS_PROGRAM, 3, 0, () => {}, { xid: 0xfeed_beef })
    expect(reply.xid).toBe(0xfeed_beef)
    expect(reply.record.readUInt32BE(4)).toBe(1) // REPLY
  })
})
