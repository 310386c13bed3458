// GETATTR, SETATTR, ACCESS, FSSTAT, FSINFO and PATHCONF (RFC 1813, sections 3.3.1-3.3.4, 3.3.18-3.3.20).

import { NAME_BYTES_MAX } from '../../fsal/names.js'
import { Nfsstat3 } from '../status.js'
import { type Procedure, viewOf } from './procedure.js'
import { readHandle, readSattr3, writeFattr3, writePostOpAttr, writeWcc } from './xdr-types.js'

// FSINFO properties (RFC 1813, section 3.3.19).
const FSF3_LINK = 0x1
const FSF3_SYMLINK = 0x2
const FSF3_HOMOGENEOUS = 0x8
const FSF3_CANSETTIME = 0x10

export const getattr: Procedure = {
  name: 'GETATTR',
  nonIdempotent: false,
  failureWords: 0,
  async run({ ctx, args, reply, state }) {
    const attributes = await state.fsal.getattr(ctx, readHandle(args))
    reply.u32(Nfsstat3.OK)
    writeFattr3(reply, attributes, viewOf(ctx.volume)!)
  }
}

export const setattr: Procedure = {
  name: 'SETATTR',
  nonIdempotent: true,
  failureWords: 2,
  async run({ ctx, args, reply, state }) {
    const handle = readHandle(args)
    const changes = readSattr3(args)
    const guard = args.bool() ? { sec: args.u32(), nsec: args.u32() } : null
    const wcc = await state.fsal.setattr(ctx, handle, changes, guard)
    reply.u32(Nfsstat3.OK)
    writeWcc(reply, wcc.before, wcc.after, viewOf(ctx.volume))
  }
}

export const access: Procedure = {
  name: 'ACCESS',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, state }) {
    const handle = readHandle(args)
    const requested = args.u32()
    const result = await state.fsal.access(ctx, handle, requested)
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, result.attributes, viewOf(ctx.volume))
    reply.u32(result.granted)
  }
}

export const fsstat: Procedure = {
  name: 'FSSTAT',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, state }) {
    const { attributes, stat } = await state.fsal.fsstat(ctx, readHandle(args))
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, attributes, viewOf(ctx.volume))
    reply.u64(stat.totalBytes)
    reply.u64(stat.freeBytes)
    reply.u64(stat.availableBytes)
    reply.u64(stat.totalFiles)
    reply.u64(stat.freeFiles)
    reply.u64(stat.availableFiles)
    reply.u32(0) // invarsec: the figures may change at any time
  }
}

export const fsinfo: Procedure = {
  name: 'FSINFO',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, state }) {
    const attributes = await state.fsal.getattr(ctx, readHandle(args))
    const transfer = state.maxTransferBytes
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, attributes, viewOf(ctx.volume))
    reply.u32(transfer) // rtmax
    reply.u32(transfer) // rtpref
    reply.u32(4096) // rtmult
    reply.u32(transfer) // wtmax
    reply.u32(transfer) // wtpref
    reply.u32(4096) // wtmult
    reply.u32(64 * 1024) // dtpref
    reply.u64(Number.MAX_SAFE_INTEGER) // maxfilesize: offsets travel as doubles inside the node
    reply.u32(0) // time_delta: nanosecond timestamps
    reply.u32(1)
    reply.u32(FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME)
  }
}

export const pathconf: Procedure = {
  name: 'PATHCONF',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, state }) {
    const attributes = await state.fsal.getattr(ctx, readHandle(args))
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, attributes, viewOf(ctx.volume))
    reply.u32(65000) // linkmax
    reply.u32(NAME_BYTES_MAX)
    reply.bool(true) // no_trunc: long names are refused, never cut
    reply.bool(true) // chown_restricted
    reply.bool(false) // case_insensitive
    reply.bool(true) // case_preserving
  }
}
