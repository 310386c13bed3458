// NFS file handles: self-describing, stable across restarts, authenticated.
//
// Layout (38 bytes, below the 64-byte NFSv3 limit):
//   0      version (1)
//   1      reserved (0)
//   2..5   export id: the volume's fsid
//   6..13  fileId of the object inside the volume (an inode number for host directories)
//   14..21 generation: distinguishes two objects that had the same fileId (a birth time)
//   22..37 HMAC-SHA256 of bytes 0..21 under the node's handle key, truncated to 16 bytes
//
// Round-trip rule: decode(encode(x)) === x for every export id, fileId and generation below 2^53.
// Nothing in a handle comes from a path, so a rename never changes one; the key lives in the data
// directory, so handles issued before a restart still verify after it. A client that alters any
// byte gets BADHANDLE, and it cannot mint a handle for another volume or object without the key.

import { createHmac, timingSafeEqual } from 'node:crypto'
import { BadHandle } from './errors.js'

export const HANDLE_VERSION = 1
export const HANDLE_BYTES = 38
const BODY_BYTES = 22
const TAG_BYTES = 16
const TWO_POW_32 = 0x1_0000_0000

export interface HandleFields {
  exportId: number
  fileId: number
  generation: number
}

/** Handles that verified recently; saves an HMAC on the common path of every call. */
const VERIFIED_CACHE_ENTRIES = 65_536

export class HandleCodec {
  private readonly verified = new Map<string, HandleFields>()

  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new Error(`handle key must be at least 32 bytes, got ${key.length}`)
  }

  encode(fields: HandleFields): Buffer {
    const handle = Buffer.alloc(HANDLE_BYTES)
    handle[0] = HANDLE_VERSION
    handle.writeUInt32BE(fields.exportId >>> 0, 2)
    writeU64(handle, 6, fields.fileId)
    writeU64(handle, 14, fields.generation)
    this.tag(handle).copy(handle, BODY_BYTES, 0, TAG_BYTES)
    return handle
  }

  /** Verifies a handle from a client and returns its fields; throws BadHandle if it is not ours. */
  decode(handle: Buffer): HandleFields {
    const cacheKey = handle.toString('latin1')
    const cached = this.verified.get(cacheKey)
    if (cached !== undefined) return cached

    const fields = this.verify(handle)
    this.verified.set(cacheKey, fields)
    if (this.verified.size > VERIFIED_CACHE_ENTRIES) this.verified.delete(this.verified.keys().next().value as string)
    return fields
  }

  private verify(handle: Buffer): HandleFields {
    if (handle.length !== HANDLE_BYTES) throw new BadHandle(`handle has ${handle.length} bytes, expected ${HANDLE_BYTES}`)
    if (handle[0] !== HANDLE_VERSION) throw new BadHandle(`handle version ${handle[0]} is not supported`)
    const expected = this.tag(handle)
    if (!timingSafeEqual(expected.subarray(0, TAG_BYTES), handle.subarray(BODY_BYTES))) {
      throw new BadHandle('handle authentication tag does not verify')
    }
    return { exportId: handle.readUInt32BE(2), fileId: readU64(handle, 6), generation: readU64(handle, 14) }
  }

  private tag(handle: Buffer): Buffer {
    return createHmac('sha256', this.key).update(handle.subarray(0, BODY_BYTES)).digest()
  }
}

function writeU64(buffer: Buffer, offset: number, value: number): void {
  const high = Math.floor(value / TWO_POW_32)
  buffer.writeUInt32BE(high >>> 0, offset)
  buffer.writeUInt32BE((value - high * TWO_POW_32) >>> 0, offset + 4)
}

function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32BE(offset) * TWO_POW_32 + buffer.readUInt32BE(offset + 4)
}
