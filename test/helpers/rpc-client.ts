// A small ONC RPC client for procedure-level tests: it builds calls byte by byte, so tests can
// send exactly what a misbehaving client would (forged handles, odd records, retransmissions).

import net from 'node:net'
import { XdrReader, XdrWriter } from '../../src/nfs/xdr.js'

export const MOUNT_PROGRAM = 100005
export const NFS_PROGRAM = 100003

export interface Credential {
  flavor: 0 | 1
  uid?: number
  gid?: number
  gids?: number[]
  machineName?: string
}

export interface RpcReply {
  xid: number
  /** 0 MSG_ACCEPTED, 1 MSG_DENIED */
  replyStat: number
  /** accept_stat when accepted (0 SUCCESS, 1 PROG_UNAVAIL, ...); reject_stat when denied. */
  stat: number
  /** Positioned at the procedure results (or the mismatch info / auth_stat). */
  body: XdrReader
  record: Buffer
}

export type ArgsWriter = (w: XdrWriter) => void

const AUTH_SYS_ROOT: Credential = { flavor: 1, uid: 0, gid: 0, gids: [], machineName: 'test' }

export class RpcClient {
  private buffered: Buffer = Buffer.alloc(0)
  private parts: Buffer[] = []
  private waiting = new Map<number, (reply: RpcReply) => void>()
  private nextXid = Math.floor(Math.random() * 0x7fff_ffff)
  private closedError: Error | null = null
  private closeWaiters: Array<() => void> = []
  credential: Credential = AUTH_SYS_ROOT

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('close', () => {
      this.closedError = new Error('connection closed by the server')
      for (const resolve of this.closeWaiters) resolve()
    })
    socket.on('error', () => {})
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => resolve(new RpcClient(socket)))
      socket.once('error', reject)
    })
  }

  get closed(): boolean {
    return this.closedError !== null
  }

  /** Resolves when the server closes the connection. */
  waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      this.closeWaiters.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  close(): void {
    this.socket.destroy()
  }

  newXid(): number {
    this.nextXid = (this.nextXid + 1) >>> 0
    return this.nextXid
  }

  /** Encodes a call (without the record mark). */
  encodeCall(program: number, version: number, procedure: number, args: ArgsWriter, options: { xid?: number; credential?: Credential; rpcVersion?: number } = {}): { xid: number; body: Buffer } {
    const xid = options.xid ?? this.newXid()
    const w = new XdrWriter(256, 0)
    w.u32(xid)
    w.u32(0) // CALL
    w.u32(options.rpcVersion ?? 2)
    w.u32(program)
    w.u32(version)
    w.u32(procedure)
    writeCredential(w, options.credential ?? this.credential)
    w.u32(0) // verifier AUTH_NONE
    w.u32(0)
    args(w)
    return { xid, body: Buffer.from(w.bytes()) }
  }

  /** Sends raw bytes (record marks included) as they are. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Waits for the reply with this xid. */
  reply(xid: number, timeoutMs = 10_000): Promise<RpcReply> {
    return new Promise((resolve, reject) => {
      if (this.closedError) {
        reject(this.closedError)
        return
      }
      const timer = setTimeout(() => {
        this.waiting.delete(xid)
        reject(new Error(`no reply to xid ${xid} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(xid, (reply) => {
        clearTimeout(timer)
        resolve(reply)
      })
      this.closeWaiters.push(() => {
        clearTimeout(timer)
        if (this.waiting.delete(xid)) reject(new Error(`connection closed before the reply to xid ${xid}`))
      })
    })
  }

  /** Sends one call as a single-fragment record (or split into `fragments` pieces) and waits for its reply. */
  async call(program: number, version: number, procedure: number, args: ArgsWriter = () => {}, options: { xid?: number; credential?: Credential; fragments?: number; rpcVersion?: number } = {}): Promise<RpcReply> {
    const { xid, body } = this.encodeCall(program, version, procedure, args, options)
    const pending = this.reply(xid)
    this.sendRaw(recordOf(body, options.fragments ?? 1))
    return pending
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    while (this.buffered.length >= 4) {
      const header = this.buffered.readUInt32BE(0)
      const length = header & 0x7fff_ffff
      if (this.buffered.length < 4 + length) return
      this.parts.push(this.buffered.subarray(4, 4 + length))
      this.buffered = this.buffered.subarray(4 + length)
      if ((header & 0x8000_0000) === 0) continue
      const record = Buffer.concat(this.parts)
      this.parts = []
      this.deliver(record)
    }
  }

  private deliver(record: Buffer): void {
    const r = new XdrReader(record, 0)
    const xid = r.u32()
    r.u32() // REPLY
    const replyStat = r.u32()
    let stat: number
    if (replyStat === 0) {
      r.u32() // verifier flavor
      r.opaque(400)
      stat = r.u32()
    } else {
      stat = r.u32()
    }
    const resolve = this.waiting.get(xid)
    if (resolve) {
      this.waiting.delete(xid)
      resolve({ xid, replyStat, stat, body: r, record })
    }
  }
}

function writeCredential(w: XdrWriter, credential: Credential): void {
  w.u32(credential.flavor)
  if (credential.flavor === 0) {
    w.u32(0)
    return
  }
  const body = new XdrWriter(64, 0)
  body.u32(0) // stamp
  body.string(credential.machineName ?? 'test')
  body.u32(credential.uid ?? 0)
  body.u32(credential.gid ?? 0)
  const gids = credential.gids ?? []
  body.u32(gids.length)
  for (const gid of gids) body.u32(gid)
  w.opaque(body.bytes())
}

/** Frames a call body as a record of `fragments` fragments. */
export function recordOf(body: Buffer, fragments = 1): Buffer {
  const pieces: Buffer[] = []
  const size = Math.ceil(body.length / fragments)
  for (let start = 0, i = 0; i < fragments; i++, start += size) {
    const piece = body.subarray(start, Math.min(body.length, start + size))
    const header = Buffer.alloc(4)
    header.writeUInt32BE(((i === fragments - 1 ? 0x8000_0000 : 0) | piece.length) >>> 0)
    pieces.push(header, piece)
  }
  return Buffer.concat(pieces)
}
