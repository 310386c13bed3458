// Per-request state that AegisFSAL fills in and the audit trail records.

import type { FsalNode } from './node.js'
import type { FileAttributes } from './types.js'
import type { Volume } from './volume.js'

export class RequestContext {
  volume: Volume | null = null
  /** The object the request names (the directory, for operations on a name in it). */
  node: FsalNode | null = null
  /** Attributes of `node` read when its handle was resolved. */
  nodeAttributes: FileAttributes | null = null
  /** The name inside `node`, for operations on a directory entry. */
  name: string | null = null
  /** The second path of RENAME and LINK. */
  target: string | null = null
  offset: number | null = null
  length: number | null = null
  bytes: number | null = null
  /** Set when the request was refused as an attempt to leave its volume or forge a handle. */
  blocked: string | null = null
  /** The calling peer of a request that came over the mesh; allowed_clients does not apply to it. */
  meshPeer: string | null = null

  constructor(
    readonly client: string,
    readonly uid: number,
    readonly gid: number,
    readonly procedure: string,
    readonly startedAt: bigint
  ) {}

  /** Returns the path the request touched, relative to its volume root. */
  path(): string | null {
    if (this.node === null) return null
    const base = this.node.path()
    if (this.name === null) return base
    return base === '/' ? `/${this.name}` : `${base}/${this.name}`
  }
}
