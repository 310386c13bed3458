// READ, WRITE and COMMIT (RFC 1813, sections 3.3.6, 3.3.7 and 3.3.21).

import { FsalError, InvalidArgument } from '../../fsal/errors.js'
import type { StableHow } from '../../fsal/types.js'
import { Nfsstat3 } from '../status.js'
import { XdrError } from '../xdr.js'
import { type Procedure, viewOf } from './procedure.js'
import { readHandle, writePostOpAttr, writeWcc } from './xdr-types.js'

/** Largest offset and file size (FSINFO maxfilesize): offsets are doubles inside the node. */
const MAX_OFFSET = BigInt(Number.MAX_SAFE_INTEGER)

export const read: Procedure = {
  name: 'READ',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, rpc, state }) {
    const handle = readHandle(args)
    const offset = args.u64big()
    const count = Math.min(args.u32(), state.maxTransferBytes)
    if (offset > MAX_OFFSET) {
      // No file here reaches 2^53 bytes, so a read that starts there is at end of file.
      const attributes = await state.fsal.getattr(ctx, handle)
      reply.u32(Nfsstat3.OK)
      writePostOpAttr(reply, attributes, viewOf(ctx.volume))
      reply.u32(0)
      reply.bool(true)
      reply.u32(0)
      return
    }
    const result = await state.fsal.read(ctx, handle, Number(offset), count)
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
    const offset = args.u64big()
    const count = args.u32()
    const stable = args.u32()
    if (stable > 2) throw new XdrError(`stable_how ${stable} is not defined`)
    let data = args.opaque(args.remaining)
    if (data.length !== count) throw new InvalidArgument(`WRITE count ${count} does not match its ${data.length} data bytes`)
    // RFC 1813 allows a short write: a client sending more than wtmax gets wtmax bytes written.
    if (data.length > state.maxTransferBytes) data = data.subarray(0, state.maxTransferBytes)
    if (offset + BigInt(data.length) > MAX_OFFSET) throw new FsalError('FBIG', `WRITE at offset ${offset} goes past the largest file size, 2^53 - 1 bytes`)

    const result = await state.fsal.write(ctx, handle, Number(offset), data, stable as StableHow)
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
    // COMMIT always flushes the whole file, so its range is only recorded.
    const offset = args.u64big()
    ctx.offset = offset > MAX_OFFSET ? Number.MAX_SAFE_INTEGER : Number(offset)
    ctx.length = args.u32()
    const wcc = await state.fsal.commit(ctx, handle)
    reply.u32(Nfsstat3.OK)
    writeWcc(reply, wcc.before, wcc.after, viewOf(ctx.volume))
    reply.fixed(state.writeVerifier)
  }
}
