// Duplicate request cache: a retransmitted non-idempotent call gets the reply of the first one.
//
// A client retransmits with the same xid when a reply is lost, often on a new connection. Running
// REMOVE or exclusive CREATE twice would turn success into NOENT or EXIST, so replies to the calls
// a program marks non-idempotent are kept, keyed on the client's address, xid and a checksum of the
// call. The checksum covers the program, version, procedure, the first 256 bytes of the arguments
// and their length, as Linux knfsd's does (RC_CSUMLEN in fs/nfsd/cache.h). That distinguishes
// reused xids without hashing large bodies.

import { createHash } from 'node:crypto'

const CHECKSUM_ARGUMENT_BYTES = 256

interface Entry {
  checksum: string
  /** The encoded reply, record mark included; null while the first call is still running. */
  reply: Buffer | null
}

export type DrcLookup = { state: 'new' } | { state: 'in-progress' } | { state: 'done'; reply: Buffer }

export class DuplicateRequestCache {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly maxEntries: number) {}

  static checksum(record: Buffer, argsOffset: number): string {
    const hash = createHash('sha1')
    hash.update(record.subarray(12, 24)) // program, version, procedure
    hash.update(record.subarray(argsOffset, Math.min(record.length, argsOffset + CHECKSUM_ARGUMENT_BYTES)))
    hash.update(String(record.length - argsOffset))
    return hash.digest('base64')
  }

  /** Looks a call up and, when it is new, records it as in progress. */
  begin(key: string, checksum: string): DrcLookup {
    const entry = this.entries.get(key)
    if (entry && entry.checksum === checksum) {
      return entry.reply ? { state: 'done', reply: entry.reply } : { state: 'in-progress' }
    }

    if (entry) this.entries.delete(key)
    this.entries.set(key, { checksum, reply: null })
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string
      this.entries.delete(oldest)
    }
    return { state: 'new' }
  }

  finish(key: string, checksum: string, reply: Buffer): void {
    const entry = this.entries.get(key)
    if (entry && entry.checksum === checksum) entry.reply = reply
  }

  /** Forgets a call whose reply was never produced, so a retransmission runs it again. */
  abandon(key: string, checksum: string): void {
    const entry = this.entries.get(key)
    if (entry && entry.checksum === checksum && entry.reply === null) this.entries.delete(key)
  }

  get size(): number {
    return this.entries.size
  }
}
