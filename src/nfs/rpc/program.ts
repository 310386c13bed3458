// The contract between the RPC transport and the programs it serves (MOUNT, NFS).

import type { XdrReader, XdrWriter } from '../xdr.js'
import type { Credential } from './message.js'

/** The transport-level facts about the connection a call arrived on. */
export interface ConnectionInfo {
  readonly id: number
  readonly remoteAddress: string
  readonly remotePort: number
}

export interface RpcCall {
  readonly xid: number
  readonly program: number
  readonly version: number
  readonly procedure: number
  readonly credential: Credential
  readonly connection: ConnectionInfo
  /** The arguments, positioned at their first byte. */
  readonly args: XdrReader
  /** The reply, with the accepted header and SUCCESS already written; results go after it. */
  readonly reply: XdrWriter
  /**
   * Bytes sent after `reply` without being copied into it (READ data). The program writes the
   * opaque length itself; the transport sends the payload and its XDR padding.
   */
  payload: Buffer | null
  /** Called once the payload has been handed to the kernel, or dropped. */
  payloadRelease: (() => void) | null
  /** Called once the reply has been handed to the kernel, or dropped (a pooled reply buffer). */
  replyRelease: (() => void) | null
  /**
   * Work done right after the reply is sent, such as the audit event, so that it adds no latency.
   * When it returns a promise, the call counts as in flight until it settles, which is how a slow
   * audit trail holds back further requests.
   */
  afterReply: (() => void | Promise<void>) | null
  /** process.hrtime.bigint() when the record was complete. */
  readonly receivedAt: bigint
}

export interface RpcProgram {
  readonly program: number
  readonly name: string
  readonly minVersion: number
  readonly maxVersion: number
  hasProcedure(version: number, procedure: number): boolean
  /** True for procedures whose replies the duplicate request cache keeps. */
  isNonIdempotent(version: number, procedure: number): boolean
  /**
   * Decodes the arguments, runs the procedure and writes its results to `call.reply`. Throws
   * XdrError when the arguments cannot be decoded, and the transport then replies GARBAGE_ARGS.
   */
  handle(call: RpcCall): void | Promise<void>
}
