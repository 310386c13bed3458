// READ, WRITE and COMMIT (RFC 1813, sections 3.3.6, 3.3.7 and 3.3.21).

import { InvalidArgument } from '../../fsal/errors.js'
import type { StableHow } from '../../fsal/types.js'
import { Nfsstat3 } from '../status.js'
import { XdrError } from '../xdr.js'
import { type Procedure, viewOf } from './procedure.js'
import { readHandle, writePostOpAttr, writeWcc } from './xdr-types.js'

export const read: Procedure = {
  name: 'READ',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, rpc, state }) {
    const handle = readHandle(args)
    const offset = args.u64()
    const count = Math.min(args.u32(), state.maxTransferBytes)
    const result = await state.fsal.read(ctx, handle, offset, count)
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, result.attributes, viewOf(ctx.volume))
    reply.u32(result.data.length)
    reply.bool(result.eof)
    reply.u32(result.data.length)
    rpc.payload = result.data
    rpc.payloadRelease = result.release
  }
}

export const write: Procedure = {
  name: 'WRITE',
  nonIdempotent: false,
  modifies: true,
  failureWords: 2,
  async run({ ctx, args, reply, state }) {
    const handle = readHandle(args)
    const offset = args.u64()
    const count = args.u32()
    const stable = args.u32()
    if (stable > 2) throw new XdrError(`stable_how ${stable} is not defined`)
    const data = args.opaque(state.maxTransferBytes)
    if (data.length !== count) throw new InvalidArgument(`WRITE count ${count} does not match its ${data.length} data bytes`)

    const result = await state.fsal.write(ctx, handle, offset, data, stable as StableHow)
    reply.u32(Nfsstat3.OK)
    writeWcc(reply, result.before, result.after, viewOf(ctx.volume))
    reply.u32(result.count)
    reply.u32(result.committed)
    reply.fixed(state.writeVerifier)
  }
}

export const commit: Procedure = {
  name: 'COMMIT',
  nonIdempotent: false,
  failureWords: 2,
  async run({ ctx, args, reply, state }) {
    const handle = readHandle(args)
    ctx.offset = args.u64()
    ctx.length = args.u32()
    const wcc = await state.fsal.commit(ctx, handle)
    reply.u32(Nfsstat3.OK)
    writeWcc(reply, wcc.before, wcc.after, viewOf(ctx.volume))
    reply.fixed(state.writeVerifier)
  }
}
