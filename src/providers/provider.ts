// The contract every storage backend implements (LocalHost today; SeaweedFS, OpenDAL and SEAL
// behind the same interface).
//
// Callers are AegisFSAL only: names are already checked to be single components, the volume's
// access mode and quota are already enforced, and every node passed in belongs to this provider's
// volume. A provider never follows a symbolic link while resolving a node or a name. Errors are
// FsalError subclasses (or errno errors, converted by the caller with fromErrno).

import type { FsalNode } from '../fsal/node.js'
import type { CreateMode, FileAttributes, FsStat, SetAttributes, StableHow } from '../fsal/types.js'

export interface ReadResult {
  /** The bytes read: fewer than requested only at end of file. Owned by the caller. */
  data: Buffer
  eof: boolean
  attributes: FileAttributes
  /** Called once `data` has been sent, so that its memory can be reused. */
  release: (() => void) | null
}

export interface WriteResult {
  count: number
  /** The stability the data reached before the call returned. */
  committed: StableHow
  attributes: FileAttributes
}

/** Called for each object found by scan(); returns the node that stands for it. */
export type ScanVisitor = (parent: FsalNode, name: string, attributes: FileAttributes) => FsalNode

export interface StorageProvider {
  readonly kind: string
  /**
   * False when a directory's mtime and ctime do not change with entries made around the node
   * (object stores, the SeaweedFS filer, another node). AegisFSAL then lists such a directory
   * again for a READDIR from cookie 0 once its last listing is a second old. Absent means true.
   */
  readonly directoryTimesTrackEntries?: boolean

  /** Opens the backend and returns the root directory's attributes. */
  open(): Promise<FileAttributes>
  /** Releases every resource; pending data is flushed first. */
  close(): Promise<void>

  /** Returns current attributes; Stale when the node's object no longer exists. */
  getattr(node: FsalNode): Promise<FileAttributes>
  /** Returns the attributes of `name` in `dir` without following a symlink; NotFound if absent. */
  lookup(dir: FsalNode, name: string): Promise<FileAttributes>
  /** Returns every name in `dir` except "." and "..", in no particular order. */
  readdir(dir: FsalNode): Promise<string[]>
  /** Returns the attributes of each name in `dir` (no symlink followed), null for a name that is gone. */
  lookupAll(dir: FsalNode, names: readonly string[]): Promise<Array<FileAttributes | null>>

  /** Reads up to `length` bytes at `offset`; may be short only at end of file. */
  read(node: FsalNode, offset: number, length: number): Promise<ReadResult>
  /** Writes all of `data` at `offset`, extending the file with zeros across any gap. */
  write(node: FsalNode, offset: number, data: Buffer, stable: StableHow): Promise<WriteResult>
  /** Makes every earlier write to the node durable. */
  commit(node: FsalNode): Promise<FileAttributes>

  /** Creates a regular file; `guarded` and `exclusive` fail with Exists when the name is taken. */
  create(dir: FsalNode, name: string, mode: number, how: CreateMode): Promise<FileAttributes>
  mkdir(dir: FsalNode, name: string, mode: number): Promise<FileAttributes>
  symlink(dir: FsalNode, name: string, target: Buffer, mode: number): Promise<FileAttributes>
  readlink(node: FsalNode): Promise<Buffer>
  /** Adds `name` in `dir` as another name of `node`. */
  link(node: FsalNode, dir: FsalNode, name: string): Promise<FileAttributes>
  /**
   * Removes a non-directory; returns its attributes with nlink set to the names it still has
   * after the removal (0 when it is gone), counted after the unlink so that a concurrent LINK
   * cannot make it stale.
   */
  remove(dir: FsalNode, name: string): Promise<FileAttributes>
  /** Removes an empty directory; NotEmpty (and nothing removed) otherwise. */
  rmdir(dir: FsalNode, name: string): Promise<FileAttributes>
  /**
   * Renames atomically, replacing a target of a compatible type (a file by a file, a directory by
   * an empty directory). Returns the attributes of the replaced target, with nlink set to the
   * names it still has afterwards, or null.
   */
  rename(fromDir: FsalNode, fromName: string, toDir: FsalNode, toName: string): Promise<FileAttributes | null>
  /** Applies mode, size and times; ownership never reaches a provider. */
  setattr(node: FsalNode, changes: SetAttributes): Promise<FileAttributes>

  fsstat(): Promise<FsStat>
  /** Walks every object below the root, parents before children, calling visit for each. */
  scan(root: FsalNode, visit: ScanVisitor): Promise<void>
  /** Drops what the provider keeps for a node that AegisFSAL no longer tracks. */
  forget(node: FsalNode): void
}
