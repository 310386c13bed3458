// The in-memory record of one object of a volume, shared by AegisFSAL and its provider.
//
// A handle names an object by (fileId, generation); the node table maps that pair to a node, and
// a node knows its parent and its name in it, so a path is derived on demand and a rename changes
// one node instead of every handle below it.

import type { FileType } from './types.js'

export class FsalNode {
  /** Bytes this file counts for in the volume's quota, including writes in flight; -1 when unknown. */
  quotaSizeBytes = -1
  /** Writes to this file that have reserved quota and not yet finished. */
  pendingWrites = 0
  /** Bumped by every change made through AegisFSAL to a directory's entries. */
  entriesVersion = 0
  /** What the provider keeps for this object (an open descriptor, a cached key). */
  providerState: unknown = undefined
  /** Encoded NFS handle, filled on first use. */
  handle: Buffer | null = null

  constructor(
    readonly fileId: number,
    readonly generation: number,
    public type: FileType,
    public parent: FsalNode | null,
    public name: string
  ) {}

  /** The path from the volume root, "/" for the root itself. */
  path(): string {
    if (this.parent === null) return '/'
    const parts: string[] = []
    let node: FsalNode | null = this
    while (node !== null && node.parent !== null) {
      parts.push(node.name)
      node = node.parent
    }
    return '/' + parts.reverse().join('/')
  }
}
