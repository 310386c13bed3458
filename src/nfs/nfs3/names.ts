// Procedures on directory entries: LOOKUP, READLINK, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE,
// RMDIR, RENAME and LINK (RFC 1813, sections 3.3.3, 3.3.5, 3.3.8-3.3.15).

import type { CreateArguments } from '../../fsal/fsal.js'
import { Nfsstat3 } from '../status.js'
import { XdrError } from '../xdr.js'
import { type Procedure, type ProcedureCall, viewOf } from './procedure.js'
import { PATH_WIRE_MAX, readHandle, readName, readSattr3, writePostOpAttr, writePostOpHandle, writeWcc } from './xdr-types.js'
import type { NodeResult, Wcc } from '../../fsal/fsal.js'

export const lookup: Procedure = {
  name: 'LOOKUP',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, state }) {
    const dirHandle = readHandle(args)
    const name = readName(args)
    const result = await state.fsal.lookup(ctx, dirHandle, name)
    const view = viewOf(ctx.volume)
    reply.u32(Nfsstat3.OK)
    reply.opaque(state.fsal.handleOf(ctx.volume!, result.node))
    writePostOpAttr(reply, result.attributes, view)
    writePostOpAttr(reply, result.dirAttributes, view)
  }
}

export const readlink: Procedure = {
  name: 'READLINK',
  nonIdempotent: false,
  failureWords: 1,
  async run({ ctx, args, reply, state }) {
    const result = await state.fsal.readlink(ctx, readHandle(args))
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, result.attributes, viewOf(ctx.volume))
    reply.opaque(result.target)
  }
}

/** Writes the diropres3 success body shared by CREATE, MKDIR, SYMLINK and MKNOD. */
function writeDiropResult(call: ProcedureCall, result: NodeResult & { dirWcc: Wcc }): void {
  const { ctx, reply, state } = call
  const view = viewOf(ctx.volume)
  reply.u32(Nfsstat3.OK)
  writePostOpHandle(reply, state.fsal.handleOf(ctx.volume!, result.node))
  writePostOpAttr(reply, result.attributes, view)
  writeWcc(reply, result.dirWcc.before, result.dirWcc.after, view)
}

const CREATE_MODES = ['unchecked', 'guarded', 'exclusive'] as const

export const create: Procedure = {
  name: 'CREATE',
  nonIdempotent: true,
  failureWords: 2,
  async run(call) {
    const { args } = call
    const dirHandle = readHandle(args)
    const name = readName(args)
    const how = CREATE_MODES[args.u32()]
    if (how === undefined) throw new XdrError('createmode3 is not defined')
    const createArguments: CreateArguments = { how }
    if (how === 'exclusive') createArguments.verifier = Buffer.from(args.fixed(8))
    else createArguments.attributes = readSattr3(args)
    writeDiropResult(call, await call.state.fsal.create(call.ctx, dirHandle, name, createArguments))
  }
}

export const mkdir: Procedure = {
  name: 'MKDIR',
  nonIdempotent: true,
  failureWords: 2,
  async run(call) {
    const { args } = call
    const dirHandle = readHandle(args)
    const name = readName(args)
    const initial = readSattr3(args)
    writeDiropResult(call, await call.state.fsal.mkdir(call.ctx, dirHandle, name, initial))
  }
}

export const symlink: Procedure = {
  name: 'SYMLINK',
  nonIdempotent: true,
  failureWords: 2,
  async run(call) {
    const { args } = call
    const dirHandle = readHandle(args)
    const name = readName(args)
    const initial = readSattr3(args)
    const target = args.opaque(PATH_WIRE_MAX)
    writeDiropResult(call, await call.state.fsal.symlink(call.ctx, dirHandle, name, Buffer.from(target), initial))
  }
}

export const mknod: Procedure = {
  name: 'MKNOD',
  nonIdempotent: true,
  failureWords: 2,
  async run({ ctx, args, state }) {
    const dirHandle = readHandle(args)
    const name = readName(args)
    await state.fsal.mknod(ctx, dirHandle, name)
  }
}

function removeProcedure(name: string, directory: boolean): Procedure {
  return {
    name,
    nonIdempotent: true,
    failureWords: 2,
    async run({ ctx, args, reply, state }) {
      const dirHandle = readHandle(args)
      const entryName = readName(args)
      const wcc = await state.fsal.remove(ctx, dirHandle, entryName, directory)
      reply.u32(Nfsstat3.OK)
      writeWcc(reply, wcc.before, wcc.after, viewOf(ctx.volume))
    }
  }
}

export const remove = removeProcedure('REMOVE', false)
export const rmdir = removeProcedure('RMDIR', true)

export const rename: Procedure = {
  name: 'RENAME',
  nonIdempotent: true,
  failureWords: 4,
  async run({ ctx, args, reply, state }) {
    const fromHandle = readHandle(args)
    const fromName = readName(args)
    const toHandle = readHandle(args)
    const toName = readName(args)
    const result = await state.fsal.rename(ctx, fromHandle, fromName, toHandle, toName)
    const view = viewOf(ctx.volume)
    reply.u32(Nfsstat3.OK)
    writeWcc(reply, result.fromWcc.before, result.fromWcc.after, view)
    writeWcc(reply, result.toWcc.before, result.toWcc.after, view)
  }
}

export const link: Procedure = {
  name: 'LINK',
  nonIdempotent: true,
  failureWords: 3,
  async run({ ctx, args, reply, state }) {
    const handle = readHandle(args)
    const dirHandle = readHandle(args)
    const name = readName(args)
    const result = await state.fsal.link(ctx, handle, dirHandle, name)
    const view = viewOf(ctx.volume)
    reply.u32(Nfsstat3.OK)
    writePostOpAttr(reply, result.attributes, view)
    writeWcc(reply, result.dirWcc.before, result.dirWcc.after, view)
  }
}
