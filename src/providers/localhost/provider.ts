// LocalHost provider: a volume that is a directory on this host (`hostPath`, and `local` volumes
// that the node keeps under its data directory).
//
// Safety rule: no path is ever resolved from the root of the host. Every object is reached from
// the volume root's descriptor one component at a time with openat(O_PATH | O_NOFOLLOW), and each
// node keeps that O_PATH descriptor, so a symlink (made by an agent or on the host) is never
// followed and a rename of a parent cannot redirect an operation. Data is read and written through
// a second descriptor reopened from /proc/self/fd/<O_PATH fd>, which reaches the same inode
// without a path lookup.

import fs from 'node:fs'
import { isUtf8 } from 'node:buffer'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { Logger } from 'pino'
import { fromErrno, InvalidArgument, IsDirectory, NotEmpty, OutsideVolume, Stale } from '../../fsal/errors.js'
import type { FsalNode } from '../../fsal/node.js'
import type { CreateMode, FileAttributes, FsStat, SetAttributes, StableHow } from '../../fsal/types.js'
import { BufferPool } from '../buffer-pool.js'
import type { ReadResult, ScanVisitor, StorageProvider, WriteResult } from '../provider.js'
import {
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  UTIME_NOW,
  UTIME_OMIT,
  AsyncOp,
  native,
  statAt,
  statFd
} from './native.js'

/** Descriptors kept open for one node. */
class OpenNode {
  /** O_PATH descriptor naming exactly this object. */
  pathFd = -1
  /** Read-write (or read-only) descriptor of a regular file, opened on first data access. */
  ioFd = -1
  ioWritable = false
  /** Data calls in flight that use ioFd; the node is not closed while this is above zero. */
  busy = 0
  /** Set when the node was evicted or forgotten while busy. */
  closeWhenIdle = false
  /** Descriptors replaced while busy, closed once the node is idle. */
  retiredFds: number[] = []
}

export interface LocalHostOptions {
  rootPath: string
  logger: Logger
  /** Nodes whose descriptors stay open; the least recently used beyond this are closed. */
  maxOpenNodes?: number
  /** Source of READ buffers; without one, each read allocates its own. */
  bufferPool?: BufferPool
  /** Open files for reading only (a read-only volume, possibly on a read-only mount). */
  readOnly?: boolean
}

/** Suffix Linux appends to a descriptor's location in /proc when its name was removed. */
const DELETED_SUFFIX = Buffer.from(' (deleted)')

function procPath(fd: number): string {
  return `/proc/self/fd/${fd}`
}

export class LocalHostProvider implements StorageProvider {
  readonly kind = 'localhost'
  private rootFd = -1
  /** The root's location as the kernel reports it, to check open objects against. */
  private rootLocation: Buffer = Buffer.alloc(0)
  private readonly open_ = new Map<FsalNode, OpenNode>()
  private readonly maxOpenNodes: number
  private readonly logger: Logger
  private readonly bufferPool: BufferPool

  constructor(private readonly options: LocalHostOptions) {
    this.maxOpenNodes = options.maxOpenNodes ?? 4096
    this.logger = options.logger
    this.bufferPool = options.bufferPool ?? new BufferPool(1024 * 1024, 16)
  }

  async open(): Promise<FileAttributes> {
    this.rootFd = native.openat(AT_FDCWD, this.options.rootPath, O_PATH | O_DIRECTORY, 0)
    this.rootLocation = native.fdLocation(this.rootFd)
    return statFd(this.rootFd)
  }

  /**
   * Throws OutsideVolume when an open object is no longer below the volume root: a descriptor
   * follows its object when someone on the host moves it, even out of the volume. The kernel
   * reports a descriptor's current location through /proc/self/fd.
   */
  // NOTE: /proc reports locations only up to PATH_MAX (4096 bytes), so an object whose host path is
  // longer fails every request with NAMETOOLONG.
  private checkInside(node: FsalNode, fd: number): number {
    let location = native.fdLocation(fd)
    if (location.subarray(-DELETED_SUFFIX.length).equals(DELETED_SUFFIX)) {
      // The name this descriptor was opened by is gone (a file linked elsewhere, then removed
      // here), so it proves nothing. Opening again by the name the node table has either finds
      // the object inside the volume or fails as Stale. A busy state is detached, so that its
      // descriptors close when its calls end and are not used again.
      this.detach(node)
      fd = this.pathFd(node)
      location = native.fdLocation(fd)
      if (location.subarray(-DELETED_SUFFIX.length).equals(DELETED_SUFFIX)) location = location.subarray(0, -DELETED_SUFFIX.length)
    }

    const root = this.rootLocation
    const inside = location.length > root.length && location[root.length] === 0x2f && location.subarray(0, root.length).equals(root)
    if (!inside && !location.equals(root)) {
      this.forget(node)
      throw new OutsideVolume(`${node.path()} was moved outside the volume on the host`)
    }
    return fd
  }

  async close(): Promise<void> {
    for (const [node, state] of this.open_) {
      state.closeWhenIdle = true
      if (state.busy === 0) this.closeState(node, state)
    }
    if (this.rootFd >= 0) fs.closeSync(this.rootFd)
    this.rootFd = -1
  }

  /** Returns the O_PATH descriptor of a node, opening it from its parent when needed. */
  private pathFd(node: FsalNode): number {
    if (node.parent === null) return this.rootFd
    const cached = this.open_.get(node)
    if (cached !== undefined && cached.pathFd >= 0) {
      this.open_.delete(node)
      this.open_.set(node, cached)
      return cached.pathFd
    }

    const parentFd = this.pathFd(node.parent)
    let fd: number
    try {
      fd = native.openat(parentFd, node.name, O_PATH | O_NOFOLLOW, 0)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Stale(`${node.path()} no longer exists`)
      throw fromErrno(error, `open ${node.path()}`)
    }

    const attributes = statFd(fd)
    if (attributes.fileId !== node.fileId || (node.generation !== 0 && attributes.generation !== node.generation)) {
      fs.closeSync(fd)
      throw new Stale(`${node.path()} is now another object`)
    }

    const state = cached ?? new OpenNode()
    state.pathFd = fd
    this.open_.set(node, state)
    this.evictIfNeeded(node)
    return fd
  }

  /** Closes the least recently used idle nodes beyond the limit, never `keep`, whose descriptor the caller is about to use. */
  private evictIfNeeded(keep: FsalNode): void {
    if (this.open_.size <= this.maxOpenNodes) return
    for (const [node, state] of this.open_) {
      if (this.open_.size <= this.maxOpenNodes) return
      if (state.busy > 0 || node === keep) continue
      this.closeState(node, state)
    }
  }

  private closeState(node: FsalNode, state: OpenNode): void {
    if (state.ioFd >= 0) fs.closeSync(state.ioFd)
    if (state.pathFd >= 0) fs.closeSync(state.pathFd)
    for (const fd of state.retiredFds) fs.closeSync(fd)
    state.retiredFds = []
    state.ioFd = -1
    state.pathFd = -1
    // A detached state (replaced while busy) must not remove its successor from the table.
    if (this.open_.get(node) === state) this.open_.delete(node)
  }

  /** Returns a data descriptor for a regular file and marks the node busy until release(). */
  private acquireIo(node: FsalNode, writable: boolean): OpenNode {
    const pathFd = this.pathFd(node)
    const state = this.open_.get(node)!
    if (state.ioFd >= 0 && (state.ioWritable || !writable)) {
      state.busy++
      return state
    }

    let fd: number
    let isWritable = !this.options.readOnly
    try {
      fd = native.openat(AT_FDCWD, procPath(pathFd), isWritable ? O_RDWR : O_RDONLY, 0)
    } catch (error) {
      // A file without write permission, or a read-only mount, can still be read.
      const code = (error as NodeJS.ErrnoException).code
      if (writable || !isWritable || (code !== 'EACCES' && code !== 'EROFS')) throw fromErrno(error, `open ${node.path()}`)
      fd = native.openat(AT_FDCWD, procPath(pathFd), O_RDONLY, 0)
      isWritable = false
    }
    if (state.ioFd >= 0) {
      if (state.busy === 0) fs.closeSync(state.ioFd)
      else state.retiredFds.push(state.ioFd)
    }
    state.ioFd = fd
    state.ioWritable = isWritable
    state.busy++
    return state
  }

  /**
   * Runs `action` with the O_PATH descriptors of `nodes` held open: a call on the thread pool must
   * not see its descriptor closed by eviction and reused for another file meanwhile.
   */
  private async withPathFds<T>(nodes: FsalNode[], action: (...fds: number[]) => Promise<T>): Promise<T> {
    // Each descriptor is marked busy before the next is opened, because opening one can evict others.
    const fds: number[] = []
    const states: Array<OpenNode | null> = []
    try {
      for (const node of nodes) {
        fds.push(this.pathFd(node))
        const state = this.open_.get(node) ?? null
        if (state !== null) state.busy++
        states.push(state)
      }
      return await action(...fds)
    } finally {
      states.forEach((state, index) => {
        if (state !== null) this.release(nodes[index], state)
      })
    }
  }

  private release(node: FsalNode, state: OpenNode): void {
    state.busy--
    if (state.busy > 0) return
    if (state.closeWhenIdle) {
      this.closeState(node, state)
      return
    }
    for (const fd of state.retiredFds) fs.closeSync(fd)
    state.retiredFds = []
  }

  async getattr(node: FsalNode): Promise<FileAttributes> {
    let fd = this.pathFd(node)
    if (node.parent !== null) fd = this.checkInside(node, fd)
    const attributes = statFd(fd)
    if (attributes.nlink === 0) {
      this.forget(node)
      throw new Stale(`${node.path()} was removed`)
    }
    return attributes
  }

  async lookup(dir: FsalNode, name: string): Promise<FileAttributes> {
    try {
      return statAt(this.pathFd(dir), name)
    } catch (error) {
      throw fromErrno(error, `lookup ${name} in ${dir.path()}`)
    }
  }

  async lookupAll(dir: FsalNode, names: readonly string[]): Promise<Array<FileAttributes | null>> {
    const dirFd = this.pathFd(dir)
    const result: Array<FileAttributes | null> = new Array(names.length)
    for (let i = 0; i < names.length; i++) {
      try {
        result[i] = statAt(dirFd, names[i])
      } catch {
        result[i] = null
      }
    }
    return result
  }

  async readdir(dir: FsalNode): Promise<string[]> {
    const names: string[] = []
    let skipped = 0
    for (const raw of native.readdir(this.pathFd(dir))) {
      if (!isUtf8(raw)) {
        skipped++
        continue
      }
      names.push(raw.toString('utf8'))
    }
    if (skipped > 0) this.logger.warn({ path: dir.path(), skipped }, 'names that are not valid UTF-8 are not listed')
    return names
  }

  async read(node: FsalNode, offset: number, length: number): Promise<ReadResult> {
    const state = this.acquireIo(node, false)
    const buffer = this.bufferPool.acquire(length)
    try {
      let total = 0
      while (total < length) {
        const bytesRead = await readAsync(state.ioFd, buffer, total, length - total, offset + total)
        if (bytesRead === 0) break
        total += bytesRead
      }
      const attributes = statFd(state.ioFd)
      const release = () => this.bufferPool.release(buffer)
      return { data: buffer.subarray(0, total), eof: offset + total >= attributes.sizeBytes, attributes, release }
    } catch (error) {
      this.bufferPool.release(buffer)
      throw fromErrno(error, `read ${node.path()}`)
    } finally {
      this.release(node, state)
    }
  }

  async write(node: FsalNode, offset: number, data: Buffer, stable: StableHow): Promise<WriteResult> {
    const state = this.acquireIo(node, true)
    try {
      let total = 0
      while (total < data.length) {
        total += await writeAsync(state.ioFd, data, total, data.length - total, offset + total)
      }
      if (stable === 2) await fsyncAsync(state.ioFd, false)
      else if (stable === 1) await fsyncAsync(state.ioFd, true)
      return { count: total, committed: stable, attributes: statFd(state.ioFd) }
    } catch (error) {
      throw fromErrno(error, `write ${node.path()}`)
    } finally {
      this.release(node, state)
    }
  }

  async commit(node: FsalNode): Promise<FileAttributes> {
    if (node.type !== 'file') return this.getattr(node)
    const state = this.acquireIo(node, false)
    try {
      await fsyncAsync(state.ioFd, false)
      return statFd(state.ioFd)
    } catch (error) {
      throw fromErrno(error, `commit ${node.path()}`)
    } finally {
      this.release(node, state)
    }
  }

  async create(dir: FsalNode, name: string, mode: number, how: CreateMode): Promise<FileAttributes> {
    // O_NONBLOCK: an unchecked CREATE of a FIFO planted on the host must fail, not wait for a reader.
    const flags = O_CREAT | O_WRONLY | O_NOFOLLOW | O_NONBLOCK | (how === 'unchecked' ? 0 : O_EXCL)
    return this.withPathFds([dir], async (dirFd) => {
      try {
        await native.callAsync(AsyncOp.OpenCreate, dirFd, name, flags, mode, -1, '')
      } catch (error) {
        // O_NOFOLLOW on an existing symlink fails with ELOOP; to the client the name exists.
        if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw fromErrno(Object.assign(new Error('name is a symbolic link'), { code: 'EEXIST' }), `create ${name}`)
        throw fromErrno(error, `create ${name} in ${dir.path()}`)
      }
      return statAt(dirFd, name)
    })
  }

  async mkdir(dir: FsalNode, name: string, mode: number): Promise<FileAttributes> {
    return this.withPathFds([dir], async (dirFd) => {
      try {
        await native.callAsync(AsyncOp.Mkdir, dirFd, name, 0, mode, -1, '')
        return statAt(dirFd, name)
      } catch (error) {
        throw fromErrno(error, `mkdir ${name} in ${dir.path()}`)
      }
    })
  }

  async symlink(dir: FsalNode, name: string, target: Buffer): Promise<FileAttributes> {
    return this.withPathFds([dir], async (dirFd) => {
      try {
        await native.callAsync(AsyncOp.Symlink, dirFd, name, 0, 0, -1, target)
        return statAt(dirFd, name)
      } catch (error) {
        throw fromErrno(error, `symlink ${name} in ${dir.path()}`)
      }
    })
  }

  async readlink(node: FsalNode): Promise<Buffer> {
    try {
      return native.readlinkat(this.pathFd(node), '')
    } catch (error) {
      throw fromErrno(error, `readlink ${node.path()}`)
    }
  }

  async link(node: FsalNode, dir: FsalNode, name: string): Promise<FileAttributes> {
    return this.withPathFds([node, dir], async (sourceFd, dirFd) => {
      try {
        // Linking through the /proc magic link reaches the inode of the O_PATH descriptor without
        // the CAP_DAC_READ_SEARCH that linkat(AT_EMPTY_PATH) requires.
        await native.callAsync(AsyncOp.Link, AT_FDCWD, procPath(sourceFd), AT_SYMLINK_FOLLOW, 0, dirFd, name)
        return statAt(dirFd, name)
      } catch (error) {
        throw fromErrno(error, `link ${node.path()} as ${name} in ${dir.path()}`)
      }
    })
  }

  async remove(dir: FsalNode, name: string): Promise<FileAttributes> {
    return this.withPathFds([dir], async (dirFd) => {
      let targetFd = -1
      try {
        targetFd = native.openat(dirFd, name, O_PATH | O_NOFOLLOW, 0)
        const attributes = statFd(targetFd)
        if (attributes.type === 'dir') throw new IsDirectory(`${name} in ${dir.path()} is a directory; use RMDIR`)
        await native.callAsync(AsyncOp.Unlink, dirFd, name, 0, 0, -1, '')
        attributes.nlink = statFd(targetFd).nlink
        return attributes
      } catch (error) {
        throw fromErrno(error, `remove ${name} in ${dir.path()}`)
      } finally {
        if (targetFd >= 0) fs.closeSync(targetFd)
      }
    })
  }

  async rmdir(dir: FsalNode, name: string): Promise<FileAttributes> {
    return this.withPathFds([dir], async (dirFd) => {
      try {
        const attributes = statAt(dirFd, name)
        await native.callAsync(AsyncOp.Unlink, dirFd, name, AT_REMOVEDIR, 0, -1, '')
        return attributes
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new NotEmpty(`directory ${name} in ${dir.path()} is not empty`)
        throw fromErrno(error, `rmdir ${name} in ${dir.path()}`)
      }
    })
  }

  async rename(fromDir: FsalNode, fromName: string, toDir: FsalNode, toName: string): Promise<FileAttributes | null> {
    return this.withPathFds([fromDir, toDir], async (fromFd, toFd) => {
      let replacedFd = -1
      try {
        let replaced: FileAttributes | null = null
        try {
          replacedFd = native.openat(toFd, toName, O_PATH | O_NOFOLLOW, 0)
          replaced = statFd(replacedFd)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
        }
        await native.callAsync(AsyncOp.Rename, fromFd, fromName, 0, 0, toFd, toName)
        if (replaced !== null) replaced.nlink = statFd(replacedFd).nlink
        return replaced
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOTEMPTY' || code === 'EEXIST') {
          throw new NotEmpty(`cannot replace ${toName} in ${toDir.path()}: it is a directory that is not empty`)
        }
        throw fromErrno(error, `rename ${fromName} in ${fromDir.path()} to ${toName} in ${toDir.path()}`)
      } finally {
        if (replacedFd >= 0) fs.closeSync(replacedFd)
      }
    })
  }

  async setattr(node: FsalNode, changes: SetAttributes): Promise<FileAttributes> {
    // Busy for the whole call: opening the parent of a symlink below could evict this node.
    return this.withPathFds([node], (pathFd) => this.setattrAt(node, pathFd, changes))
  }

  private async setattrAt(node: FsalNode, pathFd: number, changes: SetAttributes): Promise<FileAttributes> {
    try {
      if (changes.sizeBytes !== undefined) {
        if (node.type !== 'file') throw new InvalidArgument(`cannot set the size of ${node.path()}: not a regular file`)
        const state = this.acquireIo(node, true)
        try {
          fs.ftruncateSync(state.ioFd, changes.sizeBytes)
        } finally {
          this.release(node, state)
        }
      }

      // Linux cannot change the mode of a symlink, and its mode is never used; skip it.
      if (changes.mode !== undefined && node.type !== 'symlink') fs.chmodSync(procPath(pathFd), changes.mode)

      if (changes.atime !== undefined || changes.mtime !== undefined) {
        const [atimeSec, atimeNsec] = timeArguments(changes.atime)
        const [mtimeSec, mtimeNsec] = timeArguments(changes.mtime)
        if (node.type === 'symlink' && node.parent !== null) {
          native.utimensat(this.pathFd(node.parent), node.name, atimeSec, atimeNsec, mtimeSec, mtimeNsec, AT_SYMLINK_NOFOLLOW)
        } else {
          native.utimensat(AT_FDCWD, procPath(pathFd), atimeSec, atimeNsec, mtimeSec, mtimeNsec, 0)
        }
      }
      return statFd(pathFd)
    } catch (error) {
      throw fromErrno(error, `setattr ${node.path()}`)
    }
  }

  async fsstat(): Promise<FsStat> {
    const [blockSize, blocks, blocksFree, blocksAvailable, files, filesFree, filesAvailable] = native.fstatvfs(this.rootFd)
    return {
      totalBytes: blockSize * blocks,
      freeBytes: blockSize * blocksFree,
      availableBytes: blockSize * blocksAvailable,
      totalFiles: files,
      freeFiles: filesFree,
      availableFiles: filesAvailable
    }
  }

  // NOTE: the walk keeps one descriptor open per directory level, so a tree deeper than the
  // descriptor limit (created on the host) fails the scan with EMFILE.
  async scan(root: FsalNode, visit: ScanVisitor): Promise<void> {
    let visited = 0
    const walk = async (dirFd: number, dirNode: FsalNode): Promise<void> => {
      for (const raw of native.readdir(dirFd)) {
        if (!isUtf8(raw)) continue
        const name = raw.toString('utf8')
        let attributes: FileAttributes
        try {
          attributes = statAt(dirFd, raw)
        } catch {
          continue // removed while the scan ran
        }
        const child = visit(dirNode, name, attributes)
        if (++visited % 2048 === 0) await yieldToEventLoop()
        if (attributes.type !== 'dir') continue

        let childFd: number
        try {
          childFd = native.openat(dirFd, raw, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0)
        } catch {
          continue
        }
        try {
          await walk(childFd, child)
        } finally {
          fs.closeSync(childFd)
        }
      }
    }
    await walk(this.pathFd(root), root)
  }

  /** Removes a node's descriptors from use: closed now, or when the calls using them end. */
  private detach(node: FsalNode): void {
    const state = this.open_.get(node)
    if (state === undefined) return
    this.open_.delete(node)
    if (state.busy > 0) state.closeWhenIdle = true
    else this.closeState(node, state)
  }

  forget(node: FsalNode): void {
    this.detach(node)
  }
}

function timeArguments(time: SetAttributes['atime']): [number, number] {
  if (time === undefined) return [0, UTIME_OMIT]
  if (time.kind === 'server') return [0, UTIME_NOW]
  return [time.sec, time.nsec]
}

function readAsync(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))))
}

function writeAsync(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buffer, offset, length, position, (error, written) => (error ? reject(error) : resolve(written))))
}

function fsyncAsync(fd: number, dataOnly: boolean): Promise<void> {
  return new Promise((resolve, reject) => (dataOnly ? fs.fdatasync : fs.fsync)(fd, (error) => (error ? reject(error) : resolve())))
}
