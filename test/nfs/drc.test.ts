// Duplicate request cache: a retransmitted non-idempotent call (same xid, same arguments) gets
// the reply of the first one and does not run again, on the same or a new connection.

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { decode, encode, Nfs3Client, Proc } from '../helpers/nfs3.js'
import { type ArgsWriter, NFS_PROGRAM, RpcClient, type RpcReply, recordOf } from '../helpers/rpc-client.js'

describe('duplicate request cache', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let volumeDir: string

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
    volumeDir = path.join(mounted.node.dataDir, 'volumes', 'scratch')
  })
  afterAll(async () => mounted.stop())

  /** Encodes one NFS call with a fixed xid; `send` transmits it on a connection and waits for the reply. */
  function prepare(client: RpcClient, procedure: number, args: ArgsWriter): { xid: number; send: (on?: RpcClient) => Promise<RpcReply> } {
    const { xid, body } = client.encodeCall(NFS_PROGRAM, 3, procedure, args)
    const record = recordOf(body)
    return {
      xid,
      send: async (on = client) => {
        const pending = on.reply(xid)
        on.sendRaw(record)
        const reply = await pending
        expect(reply.stat).toBe(0)
        return reply
      }
    }
  }

  it('retransmitted REMOVE replies identically', async () => {
    await nfs.writeFile(mounted.root, 'remove-twice', 'x')
    const call = prepare(nfs.rpc, Proc.REMOVE, encode.remove(mounted.root, 'remove-twice'))
    const first = await call.send()
    const second = await call.send()
    expect(decode.wcc(first.body).status).toBe('OK')
    expect(decode.wcc(second.body).status).toBe('OK')
    expect(second.record.equals(first.record)).toBe(true)
  })

  it('retransmitted REMOVE runs once', async () => {
    await nfs.writeFile(mounted.root, 'remove-once', 'first')
    const call = prepare(nfs.rpc, Proc.REMOVE, encode.remove(mounted.root, 'remove-once'))
    expect(decode.wcc((await call.send()).body).status).toBe('OK')
    await nfs.writeFile(mounted.root, 'remove-once', 'second')
    expect(decode.wcc((await call.send()).body).status).toBe('OK')
    expect(fs.readFileSync(path.join(volumeDir, 'remove-once'), 'utf8')).toBe('second')
  })

  it('REMOVE retransmitted on a new connection', async () => {
    await nfs.writeFile(mounted.root, 'remove-new-connection', 'x')
    const call = prepare(nfs.rpc, Proc.REMOVE, encode.remove(mounted.root, 'remove-new-connection'))
    const first = await call.send()
    const fresh = await RpcClient.connect(mounted.node.port)
    try {
      const second = await call.send(fresh)
      expect(decode.wcc(second.body).status).toBe('OK')
      expect(second.record.equals(first.record)).toBe(true)
    } finally {
      fresh.close()
    }
  })

  it('retransmitted exclusive CREATE replies identically', async () => {
    const call = prepare(nfs.rpc, Proc.CREATE, encode.create(mounted.root, 'exclusive-retransmit', { mode: 'exclusive', verifier: Buffer.from('retrans1') }))
    const first = await call.send()
    const second = await call.send()
    expect(decode.dirop(first.body).status).toBe('OK')
    expect(second.record.equals(first.record)).toBe(true)
  })

  it('retransmitted guarded CREATE is not EXIST', async () => {
    const call = prepare(nfs.rpc, Proc.CREATE, encode.create(mounted.root, 'guarded-retransmit', { mode: 'guarded' }))
    const first = decode.dirop((await call.send()).body)
    const second = decode.dirop((await call.send()).body)
    expect(first.status).toBe('OK')
    expect(second.status).toBe('OK')
    expect(second.attributes?.fileid).toBe(first.attributes?.fileid)
  })

  it('retransmitted MKDIR is not EXIST', async () => {
    const call = prepare(nfs.rpc, Proc.MKDIR, encode.mkdir(mounted.root, 'mkdir-retransmit'))
    const first = await call.send()
    const fresh = await RpcClient.connect(mounted.node.port)
    try {
      const second = await call.send(fresh)
      expect(decode.dirop(first.body).status).toBe('OK')
      expect(decode.dirop(second.body).status).toBe('OK')
      expect(second.record.equals(first.record)).toBe(true)
    } finally {
      fresh.close()
    }
  })

  it('retransmitted RENAME is not NOENT', async () => {
    await nfs.writeFile(mounted.root, 'rename-from', 'moved once')
    const call = prepare(nfs.rpc, Proc.RENAME, encode.rename(mounted.root, 'rename-from', mounted.root, 'rename-to'))
    const first = await call.send()
    await nfs.writeFile(mounted.root, 'rename-from', 'new file')
    const second = await call.send()
    expect(decode.rename(first.body).status).toBe('OK')
    expect(second.record.equals(first.record)).toBe(true)
    expect(fs.readFileSync(path.join(volumeDir, 'rename-to'), 'utf8')).toBe('moved once')
    expect(fs.readFileSync(path.join(volumeDir, 'rename-from'), 'utf8')).toBe('new file')
  })

  it('retransmitted RMDIR is not NOENT', async () => {
    await nfs.mkdirHandle(mounted.root, 'rmdir-retransmit')
    const call = prepare(nfs.rpc, Proc.RMDIR, encode.remove(mounted.root, 'rmdir-retransmit'))
    const first = await call.send()
    const second = await call.send()
    expect(decode.wcc(first.body).status).toBe('OK')
    expect(decode.wcc(second.body).status).toBe('OK')
  })

  it('retransmitted LINK is not EXIST', async () => {
    const file = await nfs.writeFile(mounted.root, 'link-retransmit', 'x')
    const call = prepare(nfs.rpc, Proc.LINK, encode.link(file, mounted.root, 'link-retransmit-2'))
    const first = decode.link((await call.send()).body)
    const second = decode.link((await call.send()).body)
    expect(first.status).toBe('OK')
    expect(second.status).toBe('OK')
    expect((await nfs.attributesOf(file)).nlink).toBe(2)
  })

  it('retransmitted SYMLINK is not EXIST', async () => {
    const call = prepare(nfs.rpc, Proc.SYMLINK, encode.symlink(mounted.root, 'symlink-retransmit', 'target'))
    const first = decode.dirop((await call.send()).body)
    const second = decode.dirop((await call.send()).body)
    expect(first.status).toBe('OK')
    expect(second.status).toBe('OK')
  })

  it('reused xid with new arguments runs', async () => {
    await nfs.writeFile(mounted.root, 'reuse-a', 'a')
    await nfs.writeFile(mounted.root, 'reuse-b', 'b')
    const xid = nfs.rpc.newXid()
    const first = await nfs.remove(mounted.root, 'reuse-a', { xid })
    const second = await nfs.remove(mounted.root, 'reuse-b', { xid })
    expect(first.status).toBe('OK')
    expect(second.status).toBe('OK')
    expect(fs.existsSync(path.join(volumeDir, 'reuse-b'))).toBe(false)
  })

  it('failed call is cached as failed', async () => {
    const call = prepare(nfs.rpc, Proc.REMOVE, encode.remove(mounted.root, 'absent-at-first'))
    expect(decode.wcc((await call.send()).body).status).toBe('NOENT')
    await nfs.writeFile(mounted.root, 'absent-at-first', 'created later')
    expect(decode.wcc((await call.send()).body).status).toBe('NOENT')
    expect(fs.existsSync(path.join(volumeDir, 'absent-at-first'))).toBe(true)
  })
})
