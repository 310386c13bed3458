// The in-memory record of one object of a volume, shared by AegisFSAL and its provider.
//
// A handle names an object by (fileId, generation); the node table maps that pair to a node, and
// a node knows its parent and its name in it, so a path is derived on demand and a rename changes
// one node instead of every handle below it.

import type { FileType } from './types.js'

/** Deeper than any path a host file system can resolve (PATH_MAX is 4096 bytes). */
const MAX_PATH_COMPONENTS = 4096

export class FsalNode {
  /** Bytes this file counts for in the volume's quota, including writes in flight; -1 when unknown. */
  quotaSizeBytes = -1
  /** Writes to this file that have reserved quota and not yet finished. */
  pendingWrites = 0
  /** Bumped by every change made through AegisFSAL to a directory's entries. */
  entriesVersion = 0
  /** Provider state for this object (an open descriptor, a cached key). */
  providerState: unknown = undefined
  /** Encoded NFS handle, filled on first use. */
  handle: Buffer | null = null
  /** Bytes a directory was charged to the quota (at MKDIR or at the start scan), released with it. */
  chargedBytes = 0

  constructor(
    readonly fileId: number,
    readonly generation: number,
    public type: FileType,
    public parent: FsalNode | null,
    public name: string
  ) {}

  /** Returns the path from the volume root, "/" for the root itself. */
  path(): string {
    if (this.parent === null) return '/'
    const parts: string[] = []
    let node: FsalNode | null = this
    while (node !== null && node.parent !== null) {
      // Volume.nodeFor rejects cycles, so the table never records one. This bound keeps a bug
      // there from turning into an endless loop in every log line.
      if (parts.length >= MAX_PATH_COMPONENTS) return `/.../${parts.slice(0, 8).reverse().join('/')}`
      parts.push(node.name)
      node = node.parent
    }
    return '/' + parts.reverse().join('/')
  }

  /** True when `other` is this node or one of its ancestors. */
  hasAncestor(other: FsalNode): boolean {
    let node: FsalNode | null = this
    for (let depth = 0; node !== null && depth <= MAX_PATH_COMPONENTS; depth++) {
      if (node === other) return true
      node = node.parent
    }
    return false
  }
}
