// READDIR and READDIRPLUS (RFC 1813, sections 3.3.16 and 3.3.17).
//
// A cookie is a position in a snapshot of the directory's names, and the cookie verifier names
// the snapshot. Entry i (0 ".", 1 "..", then the names in sorted order) has cookie i + 1, so a
// client resuming from cookie c continues at entry c. A directory keeps its last four snapshots,
// for up to 256 directories, so a listing paged with small counts returns every name exactly
// once even when the directory changes meanwhile.

import { FsalError } from '../../fsal/errors.js'
import { BufferPool } from '../../providers/buffer-pool.js'
import type { FsalNode } from '../../fsal/node.js'
import type { FileAttributes } from '../../fsal/types.js'
import { Nfsstat3 } from '../status.js'
import { type Procedure, type ProcedureCall, viewOf } from './procedure.js'
import { readHandle, writePostOpAttr, writePostOpHandle } from './xdr-types.js'

/** status, post_op_attr with fattr3, cookieverf, the end-of-list marker and eof. */
const RESOK_FIXED_BYTES = 4 + 4 + 84 + 8 + 4 + 4
const FATTR3_BYTES = 84
/** An entry with a one-byte name: marker, fileid, name, cookie. */
const MIN_ENTRY_BYTES = 4 + 8 + 8 + 8
/** The same with attributes and a handle of at least 32 bytes. */
const MIN_PLUS_ENTRY_BYTES = MIN_ENTRY_BYTES + 4 + FATTR3_BYTES + 4 + 4 + 32
/** Upper bound on the reply buffer allocated up front; a client may ask for far larger pages. */
const MAX_REPLY_PREALLOCATION_BYTES = 1024 * 1024
/** Reply buffers for pages up to 128 KiB, the sizes clients ask for in practice. */
const REPLY_POOL = new BufferPool(128 * 1024 + 1024, 64)

function paddedBytes(length: number): number {
  return (length + 3) & ~3
}

async function run(call: ProcedureCall, plus: boolean): Promise<void> {
  const { ctx, args, reply, rpc, state } = call
  const dirHandle = readHandle(args)
  const cookieBig = args.u64big()
  const verifier = args.fixed(8)
  const dirCount = args.u32()
  const maxCount = plus ? args.u32() : dirCount

  if (cookieBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsalError('BAD_COOKIE', `cookie ${cookieBig} was never issued`)
  const cookie = Number(cookieBig)
  const page = await state.fsal.readdir(ctx, dirHandle, cookie, verifier)
  const { dir, listing, entries } = page
  const volume = ctx.volume!
  const view = viewOf(volume)
  const total = listing.names.length + 2
  if (cookie > total) throw new FsalError('BAD_COOKIE', `cookie ${cookie} is past the end of a listing of ${total} entries`)

  // Large pages are written into pooled buffers: allocating one per page makes V8 run full
  // collections for the external memory alone.
  if (maxCount <= REPLY_POOL.bufferBytes && rpc.replyRelease === null) {
    const pooled = REPLY_POOL.acquire(REPLY_POOL.bufferBytes)
    reply.adopt(pooled)
    rpc.replyRelease = () => REPLY_POOL.release(pooled)
  } else {
    reply.reserve(Math.min(maxCount, MAX_REPLY_PREALLOCATION_BYTES))
  }
  reply.u32(Nfsstat3.OK)
  writePostOpAttr(reply, page.attributes, view)
  reply.fixed(listing.verifier)

  // The maximum number of entries this page can carry, counting the smallest possible entry.
  const window = Math.ceil(maxCount / (plus ? MIN_PLUS_ENTRY_BYTES : MIN_ENTRY_BYTES)) + 1
  let replyBytes = RESOK_FIXED_BYTES
  let dirBytes = 0
  let index = cookie
  let emitted = 0
  for (; index < total; index++) {
    let name: string
    let node: FsalNode
    let attributes: FileAttributes
    if (index === 0) {
      name = '.'
      node = dir
      attributes = page.attributes
    } else if (index === 1) {
      name = '..'
      node = page.parent
      attributes = page.parentAttributes
    } else {
      let listed = entries[index - 2]
      if (listed === undefined) {
        await state.fsal.fillEntries(volume, page, index - 2, window)
        listed = entries[index - 2]
      }
      if (listed === null || listed === undefined) continue
      name = listing.names[index - 2]
      attributes = listed
      node = state.fsal.entryNode(volume, dir, listing, index - 2, attributes)
    }

    const nameBytes = Buffer.byteLength(name)
    const entryDirBytes = 8 + 4 + paddedBytes(nameBytes) + 8
    let entryBytes = 4 + entryDirBytes
    let handle: Buffer | null = null
    if (plus) {
      handle = state.fsal.handleOf(volume, node)
      entryBytes += 4 + FATTR3_BYTES + 4 + 4 + paddedBytes(handle.length)
    }
    if (replyBytes + entryBytes > maxCount || (plus && dirBytes + entryDirBytes > dirCount)) break

    replyBytes += entryBytes
    dirBytes += entryDirBytes
    emitted++
    reply.u32(1)
    reply.u64(attributes.fileId)
    reply.string(name)
    reply.u64(index + 1)
    if (plus) {
      writePostOpAttr(reply, attributes, view)
      writePostOpHandle(reply, handle)
    }
  }

  if (emitted === 0 && index < total) {
    throw new FsalError('TOOSMALL', `count ${maxCount} is too small for one directory entry`)
  }
  reply.u32(0)
  reply.bool(index >= total)
}

export const readdir: Procedure = {
  name: 'READDIR',
  nonIdempotent: false,
  failureWords: 1,
  run: (call) => run(call, false)
}

export const readdirplus: Procedure = {
  name: 'READDIRPLUS',
  nonIdempotent: false,
  failureWords: 1,
  run: (call) => run(call, true)
}
