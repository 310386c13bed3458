// ONC RPC version 2 messages (RFC 5531): call header parsing and reply headers.

import { XdrError, XdrReader, XdrWriter } from '../xdr.js'

export const RPC_VERSION = 2
export const MSG_CALL = 0
export const MSG_REPLY = 1
export const MSG_ACCEPTED = 0
export const MSG_DENIED = 1

export const enum AcceptStat {
  SUCCESS = 0,
  PROG_UNAVAIL = 1,
  PROG_MISMATCH = 2,
  PROC_UNAVAIL = 3,
  GARBAGE_ARGS = 4,
  SYSTEM_ERR = 5
}

export const enum RejectStat {
  RPC_MISMATCH = 0,
  AUTH_ERROR = 1
}

export const enum AuthStat {
  AUTH_BADCRED = 1,
  AUTH_REJECTEDCRED = 2,
  AUTH_TOOWEAK = 5
}

export const AUTH_NONE = 0
export const AUTH_SYS = 1

/** Largest credential or verifier body that RFC 5531 allows. */
const AUTH_BODY_MAX = 400
const MACHINE_NAME_MAX = 255
const AUTH_SYS_GIDS_MAX = 16

/** The caller's identity from its credential; AUTH_NONE callers get uid and gid 65534, the usual anonymous id. */
export interface Credential {
  flavor: number
  uid: number
  gid: number
  gids: number[]
  machineName: string
}

export interface CallHeader {
  xid: number
  program: number
  version: number
  procedure: number
  credential: Credential
  /** Offset of the first argument byte in the record. */
  argsOffset: number
}

const NOBODY = 65534

/** Thrown when a call's credential cannot be accepted; carries the auth_stat to reply with. */
export class AuthError extends Error {
  override name = 'AuthError'
  constructor(
    readonly stat: AuthStat,
    message: string
  ) {
    super(message)
  }
}

/** Thrown when the record is a call for an RPC version other than 2. */
export class RpcVersionError extends Error {
  override name = 'RpcVersionError'
}

/**
 * Parses the call header of one record. Throws XdrError for a record too short to hold a header
 * (the caller drops it), RpcVersionError and AuthError for calls that get a MSG_DENIED reply.
 * Returns null for a record that is not a call (a reply sent to a server is ignored).
 */
export function parseCallHeader(record: Buffer): CallHeader | null {
  const reader = new XdrReader(record, 0)
  const xid = reader.u32()
  if (reader.u32() !== MSG_CALL) return null

  const rpcVersion = reader.u32()
  const program = reader.u32()
  const version = reader.u32()
  const procedure = reader.u32()
  if (rpcVersion !== RPC_VERSION) throw new RpcVersionError(`RPC version ${rpcVersion} is not supported`)

  let credential: Credential
  try {
    const flavor = reader.u32()
    const body = reader.opaque(AUTH_BODY_MAX)
    credential = parseCredential(flavor, body)
    reader.u32() // verifier flavor: AUTH_NONE and AUTH_SYS calls carry an empty AUTH_NONE verifier
    reader.opaque(AUTH_BODY_MAX)
  } catch (error) {
    if (error instanceof XdrError) throw new AuthError(AuthStat.AUTH_BADCRED, `malformed credential or verifier: ${error.message}`)
    throw error
  }

  return { xid, program, version, procedure, credential, argsOffset: reader.offset }
}

function parseCredential(flavor: number, body: Buffer): Credential {
  if (flavor === AUTH_NONE) return { flavor, uid: NOBODY, gid: NOBODY, gids: [], machineName: '' }
  if (flavor !== AUTH_SYS) throw new AuthError(AuthStat.AUTH_TOOWEAK, `credential flavor ${flavor} is not supported; use AUTH_SYS or AUTH_NONE`)

  try {
    const reader = new XdrReader(body, 0)
    reader.u32() // stamp
    const machineName = reader.opaque(MACHINE_NAME_MAX).toString('utf8')
    const uid = reader.u32()
    const gid = reader.u32()
    const count = reader.u32()
    if (count > AUTH_SYS_GIDS_MAX) throw new XdrError(`AUTH_SYS credential lists ${count} groups, at most ${AUTH_SYS_GIDS_MAX} are allowed`)
    const gids: number[] = []
    for (let i = 0; i < count; i++) gids.push(reader.u32())
    return { flavor, uid, gid, gids, machineName }
  } catch (error) {
    if (error instanceof XdrError) throw new AuthError(AuthStat.AUTH_BADCRED, `malformed AUTH_SYS credential: ${error.message}`)
    throw error
  }
}

/** Starts an accepted reply: xid, MSG_REPLY, MSG_ACCEPTED, an AUTH_NONE verifier and the status. */
export function writeAcceptedHeader(writer: XdrWriter, xid: number, stat: AcceptStat): void {
  writer.u32(xid)
  writer.u32(MSG_REPLY)
  writer.u32(MSG_ACCEPTED)
  writer.u32(AUTH_NONE)
  writer.u32(0)
  writer.u32(stat)
}

export function writeDeniedRpcMismatch(writer: XdrWriter, xid: number): void {
  writer.u32(xid)
  writer.u32(MSG_REPLY)
  writer.u32(MSG_DENIED)
  writer.u32(RejectStat.RPC_MISMATCH)
  writer.u32(RPC_VERSION)
  writer.u32(RPC_VERSION)
}

export function writeDeniedAuth(writer: XdrWriter, xid: number, stat: AuthStat): void {
  writer.u32(xid)
  writer.u32(MSG_REPLY)
  writer.u32(MSG_DENIED)
  writer.u32(RejectStat.AUTH_ERROR)
  writer.u32(stat)
}
