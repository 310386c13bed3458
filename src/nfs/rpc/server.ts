// ONC RPC over TCP with record marking (RFC 5531, section 11).
//
// Each connection dispatches every complete record as soon as it arrives, so a client may keep
// many calls in flight on one connection. Replies go out in completion order. A record that fits
// inside one received chunk is parsed in place without a copy.

import net from 'node:net'
import type { Logger } from 'pino'
import { XdrError, XdrReader, XdrWriter } from '../xdr.js'
import { BufferPool } from '../../providers/buffer-pool.js'
import { DuplicateRequestCache } from './drc.js'
import {
  AcceptStat,
  AuthError,
  RpcVersionError,
  parseCallHeader,
  writeAcceptedHeader,
  writeDeniedAuth,
  writeDeniedRpcMismatch
} from './message.js'
import type { ConnectionInfo, RpcCall, RpcProgram } from './program.js'

const LAST_FRAGMENT = 0x8000_0000
const FRAGMENT_LENGTH_MASK = 0x7fff_ffff
const PADDING = Buffer.alloc(4)
const EMPTY = Buffer.alloc(0)
/** Fragments one record may have; clients send one, or a few for very large records. */
const MAX_FRAGMENTS_PER_RECORD = 1024

export interface RpcServerOptions {
  programs: RpcProgram[]
  logger: Logger
  /** Largest record accepted, all fragments together; a larger one closes the connection. */
  maxRecordBytes: number
  /** Calls that may run at once on one connection before it stops reading. */
  maxInFlightPerConnection?: number
  /** Replies kept for retransmitted non-idempotent calls. */
  duplicateCacheEntries?: number
  /** Returns false for a client address that may not connect at all. */
  acceptClient?: (address: string) => boolean
  /** Reuses the buffers that large records spanning several socket reads are assembled in. */
  recordPool?: BufferPool
}

export class RpcServer {
  private readonly server: net.Server
  private readonly programs = new Map<number, RpcProgram>()
  private readonly connections = new Set<RpcConnection>()
  private readonly drc: DuplicateRequestCache
  private nextConnectionId = 1
  private inFlight = 0
  private idleWaiters: Array<() => void> = []
  readonly logger: Logger

  constructor(readonly options: RpcServerOptions) {
    this.logger = options.logger
    for (const program of options.programs) this.programs.set(program.program, program)
    this.drc = new DuplicateRequestCache(options.duplicateCacheEntries ?? 8192)
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket))
  }

  listen(port: number, host: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen({ port, host, backlog: 512 }, () => {
        this.server.off('error', reject)
        resolve(this.server.address() as net.AddressInfo)
      })
    })
  }

  /** Stops accepting, waits for the calls in flight to reply, then closes every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const connection of this.connections) connection.stopReading()
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve))
    for (const connection of this.connections) connection.end()
    await closed
  }

  get connectionCount(): number {
    return this.connections.size
  }

  private accept(socket: net.Socket): void {
    const address = socket.remoteAddress ?? ''
    if (this.options.acceptClient && !this.options.acceptClient(address)) {
      this.logger.warn({ client: address }, 'connection rejected: client address is not in any allowed_clients list')
      socket.destroy()
      return
    }

    const connection = new RpcConnection(this, socket, this.nextConnectionId++)
    this.connections.add(connection)
    socket.once('close', () => this.connections.delete(connection))
  }

  /** Called by a connection when a call starts or ends, to support close(). */
  trackCall(delta: number): void {
    this.inFlight += delta
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  /** Runs one complete record and returns its reply, or null when nothing is to be sent. */
  dispatch(record: Buffer, connection: ConnectionInfo, receivedAt: bigint, send: (reply: Buffer, payload: Buffer | null, release: (() => void) | null) => void, done: () => void): void {
    let header
    const writer = new XdrWriter(256)
    try {
      header = parseCallHeader(record)
    } catch (error) {
      const xid = record.length >= 4 ? record.readUInt32BE(0) : 0
      if (error instanceof RpcVersionError) {
        writeDeniedRpcMismatch(writer, xid)
        send(writer.bytes(), null, null)
      } else if (error instanceof AuthError) {
        this.logger.info({ client: connection.remoteAddress, xid, reason: error.message }, 'call rejected: bad credential')
        writeDeniedAuth(writer, xid, error.stat)
        send(writer.bytes(), null, null)
      } else {
        // Debug level and no stack: a client can send such records as fast as it likes.
        this.logger.debug({ client: connection.remoteAddress, reason: (error as Error).message }, 'malformed RPC call header; record dropped')
      }
      done()
      return
    }
    if (header === null) {
      done()
      return
    }

    const program = this.programs.get(header.program)
    const xid = header.xid
    if (!program) {
      writeAcceptedHeader(writer, xid, AcceptStat.PROG_UNAVAIL)
      send(writer.bytes(), null, null)
      done()
      return
    }
    if (header.version < program.minVersion || header.version > program.maxVersion) {
      writeAcceptedHeader(writer, xid, AcceptStat.PROG_MISMATCH)
      writer.u32(program.minVersion)
      writer.u32(program.maxVersion)
      send(writer.bytes(), null, null)
      done()
      return
    }
    if (!program.hasProcedure(header.version, header.procedure)) {
      writeAcceptedHeader(writer, xid, AcceptStat.PROC_UNAVAIL)
      send(writer.bytes(), null, null)
      done()
      return
    }

    let drcKey: string | null = null
    let checksum = ''
    if (program.isNonIdempotent(header.version, header.procedure)) {
      drcKey = `${connection.remoteAddress}/${xid}`
      checksum = DuplicateRequestCache.checksum(record, header.argsOffset)
      const cached = this.drc.begin(drcKey, checksum)
      if (cached.state === 'done') {
        this.logger.debug({ client: connection.remoteAddress, xid }, 'retransmitted call: reply sent again from the duplicate request cache')
        send(cached.reply, null, null)
        done()
        return
      }
      if (cached.state === 'in-progress') {
        this.logger.debug({ client: connection.remoteAddress, xid }, 'retransmitted call dropped: the original is still running')
        done()
        return
      }
    }

    writeAcceptedHeader(writer, xid, AcceptStat.SUCCESS)
    const resultsOffset = writer.offset
    const call: RpcCall = {
      xid,
      program: header.program,
      version: header.version,
      procedure: header.procedure,
      credential: header.credential,
      connection,
      args: new XdrReader(record, header.argsOffset),
      reply: writer,
      payload: null,
      payloadRelease: null,
      replyRelease: null,
      afterReply: null,
      receivedAt
    }

    const finish = (error?: unknown): void => {
      if (error !== undefined) {
        writer.offset = resultsOffset - 4
        call.payload = null
        call.payloadRelease?.()
        call.payloadRelease = null
        if (error instanceof XdrError) {
          writer.u32(AcceptStat.GARBAGE_ARGS)
        } else {
          this.logger.error({ err: error, client: connection.remoteAddress, xid, program: program.name, procedure: header.procedure }, 'procedure failed')
          writer.u32(AcceptStat.SYSTEM_ERR)
        }
      }

      const reply = writer.bytes()
      if (drcKey !== null) {
        if (error === undefined) this.drc.finish(drcKey, checksum, withRecordMark(reply, 0))
        else this.drc.abandon(drcKey, checksum)
      }
      const payloadRelease = call.payloadRelease
      const replyRelease = call.replyRelease
      let release = replyRelease ?? payloadRelease
      if (replyRelease !== null && payloadRelease !== null) {
        release = () => {
          payloadRelease()
          replyRelease()
        }
      }
      send(reply, call.payload, release)
      const after = call.afterReply?.()
      if (after === undefined) done()
      else after.then(done, (afterError: unknown) => {
        this.logger.error({ err: afterError, client: connection.remoteAddress, xid }, 'work after the reply failed')
        done()
      })
    }

    let result
    try {
      result = program.handle(call)
    } catch (error) {
      finish(error)
      return
    }
    if (result === undefined) finish()
    else result.then(() => finish(), finish)
  }
}

/** Writes the record mark of a single-fragment record into the first four bytes. */
function withRecordMark(reply: Buffer, payloadBytes: number): Buffer {
  reply.writeUInt32BE((LAST_FRAGMENT | (reply.length - 4 + payloadBytes)) >>> 0, 0)
  return reply
}

class RpcConnection implements ConnectionInfo {
  readonly remoteAddress: string
  readonly remotePort: number
  private chunks: Buffer[] = []
  private bufferedBytes = 0
  private recordParts: Buffer[] = []
  private recordBytes = 0
  private inFlight = 0
  private paused = false
  private closed = false
  private reading = true
  private readonly maxInFlight: number
  private readonly maxRecordBytes: number
  private readonly recordPool: BufferPool | null
  /** The pooled buffer behind the fragment consume() returned last, if it came from the pool. */
  private pooledFragment: Buffer | null = null

  constructor(
    private readonly server: RpcServer,
    private readonly socket: net.Socket,
    readonly id: number
  ) {
    this.remoteAddress = socket.remoteAddress ?? ''
    this.remotePort = socket.remotePort ?? 0
    this.maxInFlight = server.options.maxInFlightPerConnection ?? 128
    this.maxRecordBytes = server.options.maxRecordBytes
    this.recordPool = server.options.recordPool ?? null
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => this.updateFlow())
    socket.on('error', (error) => server.logger.debug({ err: error, client: this.remoteAddress }, 'connection error'))
    socket.on('close', () => {
      this.closed = true
    })
  }

  stopReading(): void {
    this.reading = false
    this.socket.pause()
  }

  /** Sends what is queued, then closes; a client that keeps its side open is cut off after a second. */
  end(): void {
    this.socket.end()
    // Reading resumes, with the data dropped (reading is off), so that the client's FIN is seen
    // and the socket closes. The timer keeps the process alive until then.
    this.socket.resume()
    const cutOff = setTimeout(() => this.socket.destroy(), 1000)
    this.socket.once('close', () => clearTimeout(cutOff))
  }

  private onData(chunk: Buffer): void {
    if (!this.reading) return
    this.chunks.push(chunk)
    this.bufferedBytes += chunk.length
    const receivedAt = process.hrtime.bigint()

    while (this.bufferedBytes >= 4) {
      const header = this.peekHeader()
      const fragmentBytes = header & FRAGMENT_LENGTH_MASK
      if (this.recordBytes + fragmentBytes > this.maxRecordBytes) {
        this.server.logger.warn(
          { client: this.remoteAddress, recordBytes: this.recordBytes + fragmentBytes, maxRecordBytes: this.maxRecordBytes },
          'record larger than nfs.max_record_bytes; closing the connection'
        )
        this.socket.destroy()
        this.chunks = []
        this.bufferedBytes = 0
        return
      }
      if (this.bufferedBytes < 4 + fragmentBytes) break

      this.consume(4)
      const fragment = this.consume(fragmentBytes)
      let pooled = this.pooledFragment
      this.pooledFragment = null
      if ((header & LAST_FRAGMENT) === 0) {
        if (this.recordParts.length >= MAX_FRAGMENTS_PER_RECORD) {
          // Empty fragments add no bytes, so only their count bounds the memory they take.
          this.server.logger.warn({ client: this.remoteAddress, fragments: this.recordParts.length }, 'record split into too many fragments; closing the connection')
          this.socket.destroy()
          this.chunks = []
          this.bufferedBytes = 0
          return
        }
        this.recordParts.push(pooled === null ? fragment : Buffer.from(fragment))
        if (pooled !== null) this.recordPool!.release(pooled)
        this.recordBytes += fragmentBytes
        continue
      }

      let record = fragment
      if (this.recordParts.length > 0) {
        this.recordParts.push(fragment)
        record = Buffer.concat(this.recordParts, this.recordBytes + fragmentBytes)
        this.recordParts = []
        this.recordBytes = 0
        if (pooled !== null) this.recordPool!.release(pooled)
        pooled = null
      }
      this.startCall(record, receivedAt, pooled)
      if (!this.reading || this.closed) return
    }
  }

  private peekHeader(): number {
    const first = this.chunks[0]
    if (first.length >= 4) return first.readUInt32BE(0)
    const head = Buffer.concat(this.chunks, Math.min(this.bufferedBytes, 16))
    return head.readUInt32BE(0)
  }

  /** Removes `bytes` from the front of the buffered chunks; copies only when they span chunks. */
  private consume(bytes: number): Buffer {
    // An empty fragment may arrive alone, when nothing else is buffered.
    if (bytes === 0) return EMPTY
    this.bufferedBytes -= bytes
    const first = this.chunks[0]
    if (first.length > bytes) {
      this.chunks[0] = first.subarray(bytes)
      return first.subarray(0, bytes)
    }
    if (first.length === bytes) {
      this.chunks.shift()
      return first
    }

    let out: Buffer
    if (this.recordPool !== null && bytes <= this.recordPool.bufferBytes && bytes >= this.recordPool.bufferBytes / 4) {
      this.pooledFragment = this.recordPool.acquire(bytes)
      out = this.pooledFragment.subarray(0, bytes)
    } else {
      out = Buffer.allocUnsafe(bytes)
    }
    let filled = 0
    while (filled < bytes) {
      const chunk = this.chunks[0]
      const take = Math.min(chunk.length, bytes - filled)
      chunk.copy(out, filled, 0, take)
      filled += take
      if (take === chunk.length) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(take)
    }
    return out
  }

  /** Dispatches a record; a pooled record buffer goes back to the pool once the call is done with it. */
  private startCall(record: Buffer, receivedAt: bigint, pooled: Buffer | null): void {
    this.inFlight++
    this.server.trackCall(1)
    this.updateFlow()
    this.server.dispatch(record, this, receivedAt, (reply, payload, release) => this.send(reply, payload, release), () => {
      if (pooled !== null) this.recordPool!.release(pooled)
      this.inFlight--
      this.server.trackCall(-1)
      this.updateFlow()
    })
  }

  private send(reply: Buffer, payload: Buffer | null, release: (() => void) | null): void {
    if (this.closed || this.socket.destroyed) {
      release?.()
      return
    }
    const payloadBytes = payload ? (payload.length + 3) & ~3 : 0
    withRecordMark(reply, payloadBytes)
    if (payload === null) {
      this.socket.write(reply, release === null ? undefined : () => release())
      return
    }

    this.socket.cork()
    this.socket.write(reply)
    if (payload.length > 0) this.socket.write(payload, release === null ? undefined : () => release())
    else release?.()
    if (payloadBytes !== payload.length) this.socket.write(PADDING.subarray(0, payloadBytes - payload.length))
    this.socket.uncork()
  }

  /** Pauses reading while too many calls run or the client does not read its replies. */
  private updateFlow(): void {
    if (!this.reading) return
    const overloaded = this.inFlight >= this.maxInFlight || this.socket.writableLength > 16 * 1024 * 1024
    if (overloaded && !this.paused) {
      this.paused = true
      this.socket.pause()
    } else if (!overloaded && this.paused) {
      this.paused = false
      this.socket.resume()
    }
  }
}
