// The shape of one NFSv3 procedure and what every procedure receives.

import type { AegisFsal } from '../../fsal/fsal.js'
import type { RequestContext } from '../../fsal/context.js'
import type { Volume } from '../../fsal/volume.js'
import type { RpcCall } from '../rpc/program.js'
import type { XdrReader, XdrWriter } from '../xdr.js'
import type { AttributeView } from './xdr-types.js'

export interface NfsServerState {
  fsal: AegisFsal
  /** The WRITE and COMMIT verifier: new at every start, so clients resend uncommitted writes. */
  writeVerifier: Buffer
  /** Largest READ and WRITE transfer (FSINFO rtmax and wtmax). */
  maxTransferBytes: number
}

export interface ProcedureCall {
  ctx: RequestContext
  args: XdrReader
  reply: XdrWriter
  rpc: RpcCall
  state: NfsServerState
}

export interface Procedure {
  name: string
  /** True when repeating the call could change its result (the duplicate request cache keeps these). */
  nonIdempotent: boolean
  /** True when the call can change the volume. */
  modifies?: boolean
  /** How many zero words follow the status in a failure reply (empty post_op_attr and wcc_data). */
  failureWords: number
  /** Decodes the arguments, calls AegisFSAL and writes NFS3_OK and the results. */
  run(call: ProcedureCall): Promise<void>
}

/** Returns the fsid and squashed owner of the volume a request touched. */
export function viewOf(volume: Volume | null): AttributeView | null {
  if (volume === null) return null
  return { fsid: volume.settings.exportId, uid: volume.settings.uid, gid: volume.settings.gid }
}
