// The calling side of SEAL: signs each request into an envelope and sends it, with a timeout, on
// the one stream this node keeps to the owner. A stream that breaks fails its calls at once.

import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { FSAL_ERROR_CODES, FsalError, Stale, type FsalErrorCode } from '../fsal/errors.js'
import { DataAssembly, decodeReply, FrameKind, FrameParser, FrameWriter, ProtocolError, readFrames, SEAL_PROTOCOL, splitDataLength, type Frame, type Reply } from './channel.js'
import { sealEnvelope, type SealIdentity, type SealRequest } from './envelope.js'
import type { MeshNode } from './libp2p.js'

/** Thrown when the owner is unreachable or its response timed out; NFS clients see IO. */
export class RemoteUnavailable extends FsalError {
  override name = 'RemoteUnavailable'
  constructor(
    message: string,
    /** 'closed' when the connection went away with the call in flight. */
    readonly reason: 'closed' | 'timeout' | 'unreachable' = 'unreachable'
  ) {
    super('IO', message)
  }
}

/** Operations that give the same result when run twice, so a call lost with its connection is sent again. */
const IDEMPOTENT_OPERATIONS = new Set(['getattr', 'access', 'lookup', 'readlink', 'read_at', 'readdir', 'fsstat', 'fsinfo', 'pathconf', 'write_at', 'commit'])

/** The error of a request whose envelope the owner refused; `rejected` names the failed check. */
export class EnvelopeRefused extends FsalError {
  override name = 'EnvelopeRefused'
  constructor(
    readonly rejected: string,
    message: string
  ) {
    super('ACCES', message)
  }
}

export interface RemoteReply {
  result: unknown
  data: Buffer | null
}

interface PendingCall {
  resolve: (reply: RemoteReply) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
  reply: Reply | null
  assembly: DataAssembly | null
}

/** Requests in flight on one stream; more wait in the caller until one finishes. */
const MAX_IN_FLIGHT = 64
const REQUEST_ID_LIMIT = 0xffff_ffff

/** One long-lived stream to one owner node, with its calls in flight. */
class PeerChannel {
  private nextId = 1
  private readonly pending = new Map<number, PendingCall>()
  private readonly writer: FrameWriter
  private waiting: Array<() => void> = []
  closed = false

  constructor(
    readonly peerId: string,
    private readonly stream: Stream,
    private readonly logger: Logger
  ) {
    this.writer = new FrameWriter(stream)
    const parser = new FrameParser((frame) => this.onFrame(frame))
    readFrames(stream, parser, (error) => this.logger.warn({ peer: peerId, err: error }, 'malformed frame from the owner; closing the stream'))
    stream.addEventListener('close', (event) => {
      const reason = event.error ? `: ${event.error.message}` : ''
      this.fail(`the connection to ${peerId} closed${reason}`)
    })
  }

  private onFrame(frame: Frame): void {
    const call = this.pending.get(frame.id)
    if (call === undefined) return // a call that timed out or was cancelled
    if (frame.kind === FrameKind.Response) {
      const { dataLength, body } = splitDataLength(frame.payload)
      call.reply = decodeReply(body)
      if (dataLength === 0) this.finish(frame.id, call, null)
      else call.assembly = new DataAssembly(dataLength)
    } else if (frame.kind === FrameKind.Data) {
      if (call.assembly === null) throw new ProtocolError(`data for request ${frame.id} before its response`)
      if (call.assembly.add(frame.payload)) this.finish(frame.id, call, call.assembly.data)
    } else {
      throw new ProtocolError(`unexpected frame kind ${frame.kind as number} from the owner`)
    }
  }

  private finish(id: number, call: PendingCall, data: Buffer | null): void {
    this.settle(id, call)
    const reply = call.reply as Reply
    if (reply.ok) call.resolve({ result: reply.result, data })
    else if (reply.rejected !== undefined) call.reject(new EnvelopeRefused(reply.rejected, reply.message))
    else call.reject(remoteError(reply.code, reply.message))
  }

  private settle(id: number, call: PendingCall): void {
    clearTimeout(call.timer)
    this.pending.delete(id)
    this.waiting.shift()?.()
  }

  /** Fails every call in flight; the next call opens a new stream. */
  fail(reason: string): void {
    if (this.closed) return
    this.closed = true
    for (const [id, call] of this.pending) {
      this.settle(id, call)
      call.reject(new RemoteUnavailable(reason, 'closed'))
    }
    for (const wake of this.waiting.splice(0)) wake()
    if (this.stream.status === 'open') this.stream.abort(new Error(reason))
  }

  async call(wire: Uint8Array, data: Uint8Array | null, timeoutMs: number, description: string): Promise<RemoteReply> {
    const deadline = Date.now() + timeoutMs
    while (this.pending.size >= MAX_IN_FLIGHT && !this.closed) await new Promise<void>((wake) => this.waiting.push(wake))
    if (this.closed) throw new RemoteUnavailable(`the connection to ${this.peerId} closed`, 'closed')

    const id = this.nextId
    this.nextId = this.nextId >= REQUEST_ID_LIMIT ? 1 : this.nextId + 1
    const result = new Promise<RemoteReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const call = this.pending.get(id)
        if (call === undefined) return
        this.settle(id, call)
        void this.writer.cancel(id).catch(() => {})
        reject(new RemoteUnavailable(`${description} on ${this.peerId} got no answer within ${timeoutMs} ms`, 'timeout'))
      }, Math.max(1, deadline - Date.now()))
      this.pending.set(id, { resolve, reject, timer, reply: null, assembly: null })
    })
    this.writer.message(FrameKind.Request, id, wire, data).catch((error: Error) => this.fail(`sending to ${this.peerId} failed: ${error.message}`))
    return result
  }
}

/** Maps an error code from the owner back to the error taxonomy, so NFS clients see the same status. */
function remoteError(code: string, message: string): FsalError {
  // AegisFSAL recovers from a stale object by its class, so that one keeps it.
  if (code === 'STALE') return new Stale(message)
  if ((FSAL_ERROR_CODES as readonly string[]).includes(code)) return new FsalError(code as FsalErrorCode, message)
  return new FsalError('IO', `the owner returned an unknown error code ${JSON.stringify(code)}: ${message}`)
}

export interface SealClientOptions {
  node: MeshNode
  identity: SealIdentity
  logger: Logger
  timeoutMs: number
}

/** Sends signed requests to owner nodes, one multiplexed stream per owner. */
export class SealClient {
  private readonly channels = new Map<string, PeerChannel>()
  private readonly opening = new Map<string, Promise<PeerChannel>>()

  constructor(private readonly options: SealClientOptions) {}

  get timeoutMs(): number {
    return this.options.timeoutMs
  }

  private async channelTo(peerId: string, signal: AbortSignal): Promise<PeerChannel> {
    const existing = this.channels.get(peerId)
    if (existing !== undefined && !existing.closed) return existing
    let opening = this.opening.get(peerId)
    if (opening === undefined) {
      opening = (async () => {
        const stream = await this.options.node.dialProtocol(peerIdFromString(peerId), SEAL_PROTOCOL, { signal })
        const channel = new PeerChannel(peerId, stream, this.options.logger)
        this.channels.set(peerId, channel)
        return channel
      })().finally(() => this.opening.delete(peerId))
      this.opening.set(peerId, opening)
    }
    return opening
  }

  /**
   * Sends one request to `peerId` and returns its result, or throws the owner's error. An
   * idempotent request whose connection closes under it is sent once more on a new connection,
   * within the same timeout.
   */
  async call(peerId: string, request: SealRequest): Promise<RemoteReply> {
    const deadline = Date.now() + this.options.timeoutMs
    try {
      return await this.attempt(peerId, request, deadline)
    } catch (error) {
      const retry = error instanceof RemoteUnavailable && error.reason === 'closed' && IDEMPOTENT_OPERATIONS.has(request.op) && Date.now() < deadline
      if (!retry) throw error
      this.options.logger.debug({ peer: peerId, op: request.op }, 'connection closed under a call; sending it again')
      return this.attempt(peerId, request, deadline)
    }
  }

  private async attempt(peerId: string, request: SealRequest, deadline: number): Promise<RemoteReply> {
    const description = `${request.op} on volume ${request.volume}`
    let channel: PeerChannel
    try {
      channel = await this.channelTo(peerId, AbortSignal.timeout(Math.max(1, deadline - Date.now())))
    } catch (error) {
      throw new RemoteUnavailable(`cannot reach ${peerId} for ${description}: ${(error as Error).message}`)
    }
    // A fresh envelope each time: the owner refuses a nonce it has seen.
    const wire = sealEnvelope(this.options.identity, peerId, request)
    return channel.call(wire, request.data ?? null, Math.max(1, deadline - Date.now()), description)
  }

  /** Sends pre-built envelope bytes as they are; for tests that craft envelopes. */
  async callRaw(peerId: string, wire: Uint8Array, data: Uint8Array | null): Promise<RemoteReply> {
    const channel = await this.channelTo(peerId, AbortSignal.timeout(this.options.timeoutMs))
    return channel.call(wire, data, this.options.timeoutMs, 'crafted request')
  }

  close(): void {
    for (const channel of this.channels.values()) channel.fail('the node is stopping')
    this.channels.clear()
  }
}
