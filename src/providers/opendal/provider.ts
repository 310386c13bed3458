// OpenDAL provider: a volume is a root of any service that Apache OpenDAL reaches (fs, memory, s3,
// ...), through one Operator per volume. Object stores have no inodes, cannot write at an offset
// and often keep no mode or times, so the provider adds three things:
// - file ids, modes and times from a persistent map in the state directory (id-map.ts);
// - writes staged in a local sparse file per file and uploaded whole on COMMIT, on a stable WRITE,
//   on SETATTR of the size and after an idle time (staging.ts);
// - escaped keys, because OpenDAL trims and rewrites some paths (keys.ts).
// Directories are keys ending in "/", made with createDir.

import { realpathSync } from 'node:fs'
import { chmod, realpath, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Operator, type Metadata } from 'opendal'
import type { Logger } from 'pino'
import { Exists, FsalError, InvalidArgument, IsDirectory, NotDirectory, NotEmpty, NotFound, NotSupported, Stale, AccessDenied } from '../../fsal/errors.js'
import { KeyedQueue } from '../../fsal/keyed-queue.js'
import type { FsalNode } from '../../fsal/node.js'
import { FileAttributes, type CreateMode, type FsStat, type SetAttributes, type SetTime, type StableHow } from '../../fsal/types.js'
import type { ReadResult, ScanVisitor, StorageProvider, WriteResult } from '../provider.js'
import { IdMap, prepareStateDir, ROOT_FILE_ID, type ObjectRecord, type ObjectType } from './id-map.js'
import { childPath, dirKey, fileKey, nameOfListedKey } from './keys.js'
import { listStaged, openStaged, type StagedFile } from './staging.js'

/** Reported by fsstat, because object stores do not report a capacity. */
const REPORTED_CAPACITY_BYTES = 2 ** 50
const REPORTED_FILES = 2 ** 40
const DEFAULT_IDLE_UPLOAD_MS = 5_000
const DEFAULT_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
const DEFAULT_STAT_CACHE_MS = 1_000
/** Entries of the metadata cache before it is emptied, which bounds its memory. */
const STAT_CACHE_MAX_ENTRIES = 10_000
/** Maximum lookups of one path while its record keeps changing (see find). */
const FIND_ATTEMPTS = 3
const FILE_SYNC: StableHow = 2
const UNSTABLE: StableHow = 0

export interface OpenDalProviderOptions {
  /** OpenDAL service name, such as "fs", "memory" or "s3". */
  scheme: string
  /** Service options as OpenDAL takes them ("root", "bucket", "endpoint", ...). */
  options: Record<string, string>
  /** Local directory for the id map and the staging files of this volume; created when missing. */
  stateDir: string
  logger: Logger
  /** Upload a file this long after its last unstable write (default 5 s). */
  idleUploadMs?: number
  /** Part size when the service takes multipart uploads, and of the copies made for staging (default 8 MiB). */
  uploadChunkBytes?: number
  /**
   * The host directory behind an fs service, when there is one. OpenDAL's fs service follows
   * symbolic links, so the provider then checks that every key resolves inside this directory,
   * and gives what it writes modes that only the node's user can read.
   */
  hostRoot?: string
  /**
   * How long a metadata response of the service is reused (default 1 s, 0 to ask every time). A
   * change made by another client of the service shows after this time at the latest.
   */
  statCacheMs?: number
  /**
   * An Operator to use instead of building one from scheme and options, for callers that share
   * one (the memory service keeps its data per Operator).
   */
  operator?: Operator
}

type OpenDalErrorKind = string

/** Returns the OpenDAL error kind at the start of a binding error's message ("NotFound", ...). */
function kindOf(error: unknown): OpenDalErrorKind | null {
  if (!(error instanceof Error)) return null
  const match = /^(?:Error )?([A-Za-z]+) \((?:permanent|temporary|persistent)\)/.exec(error.message)
  return match === null ? null : match[1]!
}

/** Converts an OpenDAL error to the FSAL taxonomy; FsalErrors pass through. */
function toFsalError(error: unknown, what: string): FsalError {
  if (error instanceof FsalError) return error
  const message = `${what}: ${error instanceof Error ? error.message : String(error)}`
  switch (kindOf(error)) {
    case 'NotFound':
      return new NotFound(message)
    case 'AlreadyExists':
    case 'ConditionNotMatch':
      return new Exists(message)
    case 'IsADirectory':
      return new IsDirectory(message)
    case 'NotADirectory':
      return new NotDirectory(message)
    case 'PermissionDenied':
      return new AccessDenied(message)
    case 'Unsupported':
      return new NotSupported(message)
    case 'RateLimited':
      return new FsalError('JUKEBOX', message)
    default:
      return new FsalError('IO', message)
  }
}

function msOf(time: SetTime, nowMs: number): number {
  return time.kind === 'server' ? nowMs : time.sec * 1000 + Math.floor(time.nsec / 1_000_000)
}

function setTimes(attributes: FileAttributes, record: ObjectRecord): void {
  for (const [field, ms] of [['atime', record.atimeMs], ['mtime', record.mtimeMs], ['ctime', record.ctimeMs]] as const) {
    const sec = Math.floor(ms / 1000)
    attributes[`${field}Sec`] = sec
    attributes[`${field}Nsec`] = (ms - sec * 1000) * 1_000_000
  }
}

export class OpenDalProvider implements StorageProvider {
  readonly kind = 'opendal'
  readonly directoryTimesTrackEntries = false
  private readonly operator: Operator
  private readonly logger: Logger
  private readonly ids: IdMap
  private readonly stagingDir: string
  private readonly idleUploadMs: number
  private readonly uploadChunkBytes: number
  private readonly canRename: boolean
  private readonly canWriteMulti: boolean
  private readonly staged = new Map<number, StagedFile>()
  private readonly statCacheMs: number
  /** The real path of OpenDalProviderOptions.hostRoot, or null. */
  private readonly hostRoot: string | null
  /** Metadata responses by key (see statKey). */
  private readonly statCache = new Map<string, { metadata: Metadata | null; atMs: number }>()
  /** Counts the changes made through this provider, so that statKey can tell an overtaken response. */
  private statGeneration = 0
  /** Staging operations by file id, which run one at a time per file. */
  private readonly fileQueue = new KeyedQueue<number>()

  constructor(private readonly config: OpenDalProviderOptions) {
    this.operator = config.operator ?? new Operator(config.scheme, config.options)
    this.logger = config.logger
    this.stagingDir = prepareStateDir(config.stateDir)
    this.ids = new IdMap(config.stateDir)
    this.idleUploadMs = config.idleUploadMs ?? DEFAULT_IDLE_UPLOAD_MS
    this.uploadChunkBytes = config.uploadChunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES
    this.statCacheMs = config.statCacheMs ?? DEFAULT_STAT_CACHE_MS
    this.hostRoot = config.hostRoot === undefined ? null : realpathSync(config.hostRoot)
    const capability = this.operator.capability()
    this.canRename = capability.rename
    this.canWriteMulti = capability.writeCanMulti
  }

  // ------------------------------------------------------------------ helpers

  private pathOf(node: FsalNode): string {
    return node.path().slice(1)
  }

  /** Runs `step` after every earlier step for the same file id. */
  private withFileLock<T>(fileId: number, step: () => Promise<T>): Promise<T> {
    return this.fileQueue.run(fileId, step)
  }

  /**
   * Returns the object's metadata under the key of `type`, or null when the key names nothing.
   * Responses are kept for statCacheMs, because every NFS request looks its object up at least
   * twice (the handle, then the operation), and each lookup is a request to the service. A change
   * made through this provider drops the responses for the keys it changes; `fresh` skips the cache.
   */
  private async statKey(path: string, type: ObjectType, what: string, fresh = false): Promise<Metadata | null> {
    const key = type === 'dir' ? dirKey(path) : fileKey(path)
    await this.confine(key, what)
    const nowMs = Date.now()
    const cached = this.statCache.get(key)
    if (!fresh && cached !== undefined && nowMs - cached.atMs < this.statCacheMs) return cached.metadata

    const generation = this.statGeneration
    let metadata: Metadata | null
    try {
      metadata = await this.operator.stat(key)
      if (type === 'file' && metadata.isDirectory()) metadata = null
    } catch (error) {
      if (kindOf(error) !== 'NotFound') throw toFsalError(error, what)
      metadata = null
    }
    // A response that a change overtook describes the object before the change, so it is not kept.
    if (generation === this.statGeneration && this.statCacheMs > 0) {
      if (this.statCache.size >= STAT_CACHE_MAX_ENTRIES) this.statCache.clear()
      this.statCache.set(key, { metadata, atMs: nowMs })
    }
    return metadata
  }

  /**
   * Throws AccessDenied when `key` resolves outside hostRoot on the host: a symbolic link made on
   * the host, since agents cannot make one here. The deepest part of the key that exists is
   * checked, so a key under a linked directory is caught before it is created.
   * NOTE: a link made on the host between this check and the service's own access is followed.
   */
  private async confine(key: string, what: string): Promise<void> {
    if (this.hostRoot === null) return
    let hostPath = join(this.hostRoot, key)
    for (;;) {
      try {
        const real = await realpath(hostPath)
        if (real === this.hostRoot || real.startsWith(`${this.hostRoot}/`)) return
        this.logger.warn({ key, real }, `${what}: the key resolves outside the volume on the host; access rejected`)
        throw new AccessDenied(`${what}: ${key} resolves outside the volume on the host`)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || hostPath === this.hostRoot) throw error
        hostPath = dirname(hostPath)
      }
    }
  }

  /** Gives an object that the fs service wrote a mode that only the node's user can use. */
  private async restrictHostMode(key: string, type: ObjectType): Promise<void> {
    if (this.hostRoot === null) return
    try {
      await chmod(join(this.hostRoot, key), type === 'dir' ? 0o700 : 0o600)
    } catch (error) {
      this.logger.warn({ err: error, key }, 'could not restrict the host mode of an object')
    }
  }

  /**
   * Drops the cached responses for `keys`, both as a file key and as a directory key, and marks
   * responses in flight as overtaken. Responses for other keys stay: a change to one key does not
   * change the metadata of another, and on S3 a stat of a directory key is a listing whose cost
   * grows with the directory.
   */
  private forgetStats(keys: readonly string[]): void {
    this.statGeneration++
    for (const key of keys) {
      const bare = key.endsWith('/') ? key.slice(0, -1) : key
      this.statCache.delete(bare)
      this.statCache.delete(`${bare}/`)
    }
  }

  /**
   * Runs a change to `keys` on the service with their cached responses dropped before and after
   * it, so that no response from before the change stays in the cache.
   */
  private async changing<T>(keys: readonly string[], change: () => Promise<T>): Promise<T> {
    this.forgetStats(keys)
    try {
      return await change()
    } finally {
      this.forgetStats(keys)
    }
  }

  /**
   * Finds the object at `path` and its record. A record is made for an object that exists on the
   * backend without one (written around this provider), and a record whose object is gone is
   * dropped. Returns null when nothing is there.
   */
  private async find(path: string, what: string): Promise<{ record: ObjectRecord; metadata: Metadata | null } | null> {
    if (path === '') return { record: this.ids.get('')!, metadata: null }

    // Another request can change the record during the stat (a create, rename or remove). A
    // decision based on the old record would undo that change, so the lookup starts over.
    for (let attempt = 1; ; attempt++) {
      const known = this.ids.get(path)
      const found = await this.findOnce(path, known, what)
      if (this.ids.get(path) === known || attempt === FIND_ATTEMPTS) return this.settle(path, known, found)
    }
  }

  /** Returns the object's type and metadata at `path`, trying the type of `known` first. */
  private async findOnce(path: string, known: ObjectRecord | undefined, what: string): Promise<{ type: ObjectType; metadata: Metadata } | null> {
    const order: ObjectType[] = known?.type === 'dir' ? ['dir', 'file'] : ['file', 'dir']
    for (const type of order) {
      const metadata = await this.statKey(path, type, what)
      if (metadata !== null) return { type, metadata }
    }
    return null
  }

  /** Updates the record at `path` to match the backend's object, with no await in between. */
  private settle(path: string, known: ObjectRecord | undefined, found: { type: ObjectType; metadata: Metadata } | null): { record: ObjectRecord; metadata: Metadata | null } | null {
    // Still changing after every attempt: the newest record wins and nothing is changed here.
    const latest = this.ids.get(path)
    if (latest !== known) return latest === undefined ? null : { record: latest, metadata: found?.type === latest.type ? found.metadata : null }

    if (found !== null) {
      if (known !== undefined && known.type === found.type) return { record: known, metadata: found.metadata }
      const modified = found.metadata.lastModified === null ? Date.now() : Date.parse(found.metadata.lastModified)
      const record = this.ids.add(path, found.type, found.type === 'dir' ? 0o755 : 0o644, modified)
      return { record, metadata: found.metadata }
    }

    // A file with staged data and no object yet (its first upload failed) still exists.
    if (known !== undefined && this.staged.has(known.fileId)) return { record: known, metadata: null }
    if (known !== undefined) this.ids.remove(path)
    return null
  }

  private attributesOf(record: ObjectRecord, metadata: Metadata | null): FileAttributes {
    const attributes = new FileAttributes()
    attributes.type = record.type
    attributes.mode = record.mode
    attributes.fileId = record.fileId
    attributes.generation = record.generation
    attributes.nlink = record.type === 'dir' ? 2 : 1
    setTimes(attributes, record)

    if (record.type === 'file') {
      const staged = this.staged.get(record.fileId)
      const sizeBytes = staged !== undefined ? staged.sizeBytes : Number(metadata?.contentLength ?? 0n)
      attributes.sizeBytes = sizeBytes
      attributes.usedBytes = sizeBytes
    }
    return attributes
  }

  /** Returns the object of `node`. Throws Stale when its path is empty or contains another object. */
  private async current(node: FsalNode, what: string): Promise<{ path: string; record: ObjectRecord; metadata: Metadata | null }> {
    const path = this.pathOf(node)
    const found = await this.find(path, what)
    if (found === null) throw new Stale(`${what}: ${node.path()} no longer exists`)
    if (found.record.fileId !== node.fileId) throw new Stale(`${what}: ${node.path()} is now file id ${found.record.fileId}, not ${node.fileId} (stale handle)`)
    return { path, ...found }
  }

  /** Sets a directory's mtime and ctime after a change of its entries. */
  private touchDir(path: string): void {
    const record = this.ids.get(path)
    if (record === undefined) return
    const nowMs = Date.now()
    this.ids.update(path, { ...record, mtimeMs: nowMs, ctimeMs: nowMs })
  }

  /**
   * Returns the staged file of a file id, staging the object's current content first when needed.
   * Runs under the file's lock. It looks the object up again, because a rename or an upload may
   * have happened since the caller's lookup.
   */
  private async stage(fileId: number, what: string, keepBytes = Number.MAX_SAFE_INTEGER): Promise<StagedFile> {
    const existing = this.staged.get(fileId)
    if (existing !== undefined) return existing
    const path = this.ids.pathOf(fileId)
    if (path === null) throw new Stale(`${what}: the file no longer exists`)

    const staged = await openStaged(this.stagingDir, fileId)
    try {
      await staged.truncate(0)
      const metadata = await this.statKey(path, 'file', what, true)
      if (metadata === null) throw new Stale(`${what}: the object no longer exists`)
      // Only the bytes that stay are copied, in parts, so that a truncate to 0 reads nothing and
      // memory use does not grow with the object.
      const copyBytes = Math.min(keepBytes, Number(metadata.contentLength ?? 0n))
      for (let offset = 0; offset < copyBytes; offset += this.uploadChunkBytes) {
        const length = Math.min(this.uploadChunkBytes, copyBytes - offset)
        await staged.writeAt(offset, await this.operator.read(fileKey(path), { offset: BigInt(offset), size: BigInt(length) }))
      }
    } catch (error) {
      await staged.discard()
      throw toFsalError(error, what)
    }
    staged.uploadedVersion = staged.version
    this.staged.set(fileId, staged)
    return staged
  }

  /** Restarts the idle timer after which a dirty staged file is uploaded. */
  private scheduleUpload(staged: StagedFile): void {
    if (staged.idleTimer !== null) clearTimeout(staged.idleTimer)
    staged.idleTimer = setTimeout(() => {
      staged.idleTimer = null
      this.withFileLock(staged.fileId, () => this.upload(staged.fileId, 'idle upload')).catch((error: unknown) => {
        this.logger.error({ err: error, fileId: staged.fileId }, 'idle upload of staged data failed; it stays staged')
      })
    }, this.idleUploadMs)
    staged.idleTimer.unref()
  }

  /**
   * Uploads a staged file whole to the object's current path, then drops the staging file when no
   * write came in meanwhile. Must run under the file's lock.
   */
  private async upload(fileId: number, what: string): Promise<void> {
    const staged = this.staged.get(fileId)
    if (staged === undefined) return
    if (!staged.dirty) {
      await this.dropStaged(fileId)
      return
    }
    const path = this.ids.pathOf(fileId)
    if (path === null) {
      this.logger.warn({ fileId, localPath: staged.localPath }, `${what}: no object has this file id any more; the staged data is kept`)
      return
    }

    const version = staged.version
    const key = fileKey(path)
    try {
      await this.confine(key, what)
      await this.changing([key], async () => {
        if (this.canWriteMulti && staged.sizeBytes > this.uploadChunkBytes) {
          const writer = await this.operator.writer(key, { chunk: BigInt(this.uploadChunkBytes) })
          for (let offset = 0; offset < staged.sizeBytes; offset += this.uploadChunkBytes) {
            await writer.write(await staged.readAt(offset, this.uploadChunkBytes))
          }
          await writer.close()
        } else {
          await this.operator.write(key, await staged.readAt(0, staged.sizeBytes))
        }
      })
      await this.restrictHostMode(key, 'file')
    } catch (error) {
      const converted = toFsalError(error, `${what} ${path}`)
      this.logger.error({ err: converted, path, fileId }, 'upload of staged data failed; it stays staged')
      throw converted
    }

    this.logger.debug({ path, fileId, sizeBytes: staged.sizeBytes }, `${what}: staged data uploaded`)
    staged.uploadedVersion = version
    const record = this.ids.get(path)
    if (record !== undefined) this.ids.update(path, record)
    if (!staged.dirty) await this.dropStaged(fileId)
  }

  private async dropStaged(fileId: number): Promise<void> {
    const staged = this.staged.get(fileId)
    if (staged === undefined) return
    this.staged.delete(fileId)
    await staged.discard()
  }

  /** Uploads what a crash left in the staging directory, or keeps it staged when that fails. */
  private async recoverStaged(): Promise<void> {
    for (const fileId of await listStaged(this.stagingDir)) {
      const path = this.ids.pathOf(fileId)
      if (path === null) {
        this.logger.warn({ fileId, stagingDir: this.stagingDir }, 'staged data of an unknown file id found at open; kept in place')
        continue
      }

      const staged = await openStaged(this.stagingDir, fileId)
      // Whether it reached the backend before the crash is unknown, so it is treated as not uploaded.
      staged.version = 1
      this.staged.set(fileId, staged)
      this.logger.warn({ fileId, path, sizeBytes: staged.sizeBytes }, 'staged data left by an earlier run found; uploading it')
      try {
        await this.withFileLock(fileId, () => this.upload(fileId, 'recovery upload'))
      } catch {
        this.logger.error({ fileId, path }, 'staged data left by an earlier run could not be uploaded; it stays staged and is served from there')
      }
    }
  }

  // ------------------------------------------------------------------ StorageProvider

  async open(): Promise<FileAttributes> {
    this.ids.open()
    const nowMs = Date.now()
    if (this.ids.get('') === undefined) {
      this.ids.update('', { fileId: ROOT_FILE_ID, generation: Math.floor(nowMs / 1000), type: 'dir', mode: 0o755, atimeMs: nowMs, mtimeMs: nowMs, ctimeMs: nowMs })
    }
    try {
      // Only a root that is missing is created: on S3 the root of a volume at the top of a
      // bucket is the bucket itself, and creating it would be a CreateBucket request.
      if (!(await this.operator.exists('/'))) await this.operator.createDir('/')
    } catch (error) {
      // Services without directories (some object stores) have nothing to create.
      if (kindOf(error) !== 'Unsupported') throw toFsalError(error, 'open')
    }
    // Object stores report their root without sending a request, so a missing bucket or a wrong
    // key would only show at the first request of an agent. A listing shows it now.
    try {
      await this.operator.check()
    } catch (error) {
      throw toFsalError(error, 'open')
    }

    await this.recoverStaged()
    this.logger.info({ scheme: this.config.scheme, stateDir: this.config.stateDir }, 'OpenDAL volume opened')
    return this.attributesOf(this.ids.get('')!, null)
  }

  async close(): Promise<void> {
    for (const fileId of [...this.staged.keys()]) {
      try {
        await this.withFileLock(fileId, () => this.upload(fileId, 'upload at close'))
      } catch {
        // Logged by upload; the staging file stays for the next open.
      }
    }
    for (const staged of this.staged.values()) await staged.close()
    this.staged.clear()
    this.ids.close()
  }

  async getattr(node: FsalNode): Promise<FileAttributes> {
    const { record, metadata } = await this.current(node, `getattr ${node.path()}`)
    return this.attributesOf(record, metadata)
  }

  async lookup(dir: FsalNode, name: string): Promise<FileAttributes> {
    const found = await this.find(childPath(this.pathOf(dir), name), `lookup ${name} in ${dir.path()}`)
    if (found === null) throw new NotFound(`${name} not found in ${dir.path()}`)
    return this.attributesOf(found.record, found.metadata)
  }

  /** Lists a directory's keys, without the directory itself (the fs service returns it too). */
  private async listKeys(path: string, what: string): Promise<string[]> {
    const key = dirKey(path)
    await this.confine(key, what)
    try {
      const entries = await this.operator.list(key)
      return entries.map((entry) => entry.path()).filter((entryKey) => entryKey !== key && entryKey !== '/' && entryKey !== '')
    } catch (error) {
      const converted = toFsalError(error, what)
      if (converted instanceof NotFound) throw new Stale(`${what}: the directory no longer exists`)
      throw converted
    }
  }

  async readdir(dir: FsalNode): Promise<string[]> {
    const dirPath = this.pathOf(dir)
    const keys = await this.listKeys(dirPath, `readdir ${dir.path()}`)
    const names: string[] = []
    for (const key of keys) {
      const name = nameOfListedKey(dirPath, key)
      if (name === null) this.logger.debug({ key }, `readdir ${dir.path()}: no name has this key, so the listing leaves it out`)
      else names.push(name)
    }
    return names
  }

  async lookupAll(dir: FsalNode, names: readonly string[]): Promise<Array<FileAttributes | null>> {
    const dirPath = this.pathOf(dir)
    return Promise.all(
      names.map(async (name) => {
        let found
        try {
          found = await this.find(childPath(dirPath, name), `lookup ${name} in ${dir.path()}`)
        } catch (error) {
          // A host link that leads out of an fs root hides its own name, not the whole listing.
          if (error instanceof AccessDenied) return null
          throw error
        }
        return found === null ? null : this.attributesOf(found.record, found.metadata)
      })
    )
  }

  async read(node: FsalNode, offset: number, length: number): Promise<ReadResult> {
    const what = `read ${node.path()}`
    const { path, record, metadata } = await this.current(node, what)
    if (record.type === 'dir') throw new IsDirectory(`${what}: is a directory`)

    // Staged data is read under the file's lock, so that an upload cannot drop it meanwhile.
    const wasStaged = this.staged.has(record.fileId)
    let stagedSizeBytes = -1
    let data = await this.withFileLock(record.fileId, async () => {
      const staged = this.staged.get(record.fileId)
      if (staged === undefined) return null
      stagedSizeBytes = staged.sizeBytes
      return staged.readAt(offset, length)
    })
    let objectMetadata = metadata
    if (data === null) {
      // The range is clamped to the size, because the memory service panics on a range past the end.
      // An upload since the lookup above changed the object's size.
      if (wasStaged) objectMetadata = (await this.statKey(path, 'file', what)) ?? metadata
      const sizeBytes = Number(objectMetadata?.contentLength ?? 0n)
      const end = Math.min(offset + length, sizeBytes)
      data = end > offset ? await this.readRange(path, offset, end - offset, what) : Buffer.alloc(0)
    }

    const attributes = this.attributesOf(record, objectMetadata)
    if (stagedSizeBytes >= 0) {
      attributes.sizeBytes = stagedSizeBytes
      attributes.usedBytes = stagedSizeBytes
    }
    return { data, eof: offset + data.length >= attributes.sizeBytes, attributes, release: null }
  }

  private async readRange(path: string, offset: number, length: number, what: string): Promise<Buffer> {
    await this.confine(fileKey(path), what)
    try {
      return await this.operator.read(fileKey(path), { offset: BigInt(offset), size: BigInt(length) })
    } catch (error) {
      const converted = toFsalError(error, what)
      if (converted instanceof NotFound) throw new Stale(`${what}: the object no longer exists`)
      throw converted
    }
  }

  async write(node: FsalNode, offset: number, data: Buffer, stable: StableHow): Promise<WriteResult> {
    const what = `write ${node.path()}`
    const { path, record, metadata } = await this.current(node, what)
    if (record.type === 'dir') throw new IsDirectory(`${what}: is a directory`)

    const committed = await this.withFileLock(record.fileId, async () => {
      const staged = await this.stage(record.fileId, what)
      if (data.length > 0) await staged.writeAt(offset, data)
      const nowMs = Date.now()
      record.mtimeMs = nowMs
      record.ctimeMs = nowMs

      // DATA_SYNC and FILE_SYNC both need the data on the backend before the reply.
      if (stable !== UNSTABLE) {
        await this.upload(record.fileId, what)
        return FILE_SYNC
      }
      this.scheduleUpload(staged)
      return UNSTABLE
    })

    // After an upload the staging file is gone and the size comes from the object again.
    if (this.staged.has(record.fileId)) return { count: data.length, committed, attributes: this.attributesOf(record, metadata) }
    const fresh = await this.find(path, what)
    return { count: data.length, committed, attributes: this.attributesOf(fresh?.record ?? record, fresh?.metadata ?? metadata) }
  }

  async commit(node: FsalNode): Promise<FileAttributes> {
    const what = `commit ${node.path()}`
    const { record, metadata } = await this.current(node, what)
    if (record.type === 'file') await this.withFileLock(record.fileId, () => this.upload(record.fileId, what))
    const fresh = await this.find(this.pathOf(node), what)
    return this.attributesOf(fresh?.record ?? record, fresh?.metadata ?? metadata)
  }

  async create(dir: FsalNode, name: string, mode: number, how: CreateMode): Promise<FileAttributes> {
    const what = `create ${name} in ${dir.path()}`
    const dirPath = this.pathOf(dir)
    const path = childPath(dirPath, name)

    // NOTE: guarded and exclusive creates check first, so a file that another writer of the same
    // backend makes between the check and the write is replaced.
    const existing = await this.find(path, what)
    if (existing !== null) {
      if (how !== 'unchecked') throw new Exists(`${name} already exists in ${dir.path()}`)
      if (existing.record.type === 'dir') throw new IsDirectory(`${what}: ${name} is a directory`)
      return this.attributesOf(existing.record, existing.metadata)
    }

    try {
      await this.changing([fileKey(path)], () => this.operator.write(fileKey(path), Buffer.alloc(0)))
      await this.restrictHostMode(fileKey(path), 'file')
    } catch (error) {
      throw toFsalError(error, what)
    }
    const record = this.ids.add(path, 'file', mode & 0o7777)
    this.touchDir(dirPath)
    return this.attributesOf(record, null)
  }

  async mkdir(dir: FsalNode, name: string, mode: number): Promise<FileAttributes> {
    const what = `mkdir ${name} in ${dir.path()}`
    const dirPath = this.pathOf(dir)
    const path = childPath(dirPath, name)
    if ((await this.find(path, what)) !== null) throw new Exists(`${name} already exists in ${dir.path()}`)

    try {
      await this.changing([dirKey(path)], () => this.operator.createDir(dirKey(path)))
      await this.restrictHostMode(dirKey(path), 'dir')
    } catch (error) {
      throw toFsalError(error, what)
    }
    const record = this.ids.add(path, 'dir', mode & 0o7777)
    this.touchDir(dirPath)
    return this.attributesOf(record, null)
  }

  async symlink(dir: FsalNode, name: string, _target: Buffer, _mode: number): Promise<FileAttributes> {
    throw new NotSupported(`symlink ${name} in ${dir.path()}: OpenDAL volumes do not support symbolic links`)
  }

  async readlink(node: FsalNode): Promise<Buffer> {
    throw new NotSupported(`readlink ${node.path()}: OpenDAL volumes do not support symbolic links`)
  }

  async link(_node: FsalNode, dir: FsalNode, name: string): Promise<FileAttributes> {
    throw new NotSupported(`link ${name} in ${dir.path()}: OpenDAL volumes do not support hard links`)
  }

  private async deleteKey(key: string, what: string): Promise<void> {
    try {
      await this.changing([key], () => this.operator.delete(key))
    } catch (error) {
      throw toFsalError(error, what)
    }
  }

  async remove(dir: FsalNode, name: string): Promise<FileAttributes> {
    const what = `remove ${name} in ${dir.path()}`
    const dirPath = this.pathOf(dir)
    const path = childPath(dirPath, name)
    const found = await this.find(path, what)
    if (found === null) throw new NotFound(`${name} not found in ${dir.path()}`)
    if (found.record.type === 'dir') throw new IsDirectory(`${what}: is a directory`)

    const attributes = this.attributesOf(found.record, found.metadata)
    await this.withFileLock(found.record.fileId, async () => {
      await this.dropStaged(found.record.fileId)
      await this.deleteKey(fileKey(path), what)
    })
    this.ids.remove(path)
    this.touchDir(dirPath)
    attributes.nlink = 0
    return attributes
  }

  async rmdir(dir: FsalNode, name: string): Promise<FileAttributes> {
    const what = `rmdir ${name} in ${dir.path()}`
    const dirPath = this.pathOf(dir)
    const path = childPath(dirPath, name)
    const found = await this.find(path, what)
    if (found === null) throw new NotFound(`${name} not found in ${dir.path()}`)
    if (found.record.type !== 'dir') throw new NotDirectory(`${what}: not a directory`)
    // The memory service deletes a directory key that still has keys below it, so emptiness is
    // checked here for every service.
    if ((await this.listKeys(path, what)).length > 0) throw new NotEmpty(`${what}: the directory is not empty`)

    await this.deleteKey(dirKey(path), what)
    this.ids.remove(path)
    this.touchDir(dirPath)
    const attributes = this.attributesOf(found.record, found.metadata)
    attributes.nlink = 0
    return attributes
  }

  async rename(fromDir: FsalNode, fromName: string, toDir: FsalNode, toName: string): Promise<FileAttributes | null> {
    const what = `rename ${fromName} in ${fromDir.path()} to ${toName} in ${toDir.path()}`
    const fromDirPath = this.pathOf(fromDir)
    const toDirPath = this.pathOf(toDir)
    const fromPath = childPath(fromDirPath, fromName)
    const toPath = childPath(toDirPath, toName)

    const source = await this.find(fromPath, what)
    if (source === null) throw new NotFound(`${fromName} not found in ${fromDir.path()}`)
    if (fromPath === toPath) return null
    if (toPath.startsWith(`${fromPath}/`)) throw new InvalidArgument(`${what}: cannot move a directory into itself`)

    const target = await this.find(toPath, what)
    if (target !== null) {
      if (source.record.type === 'dir' && target.record.type !== 'dir') throw new NotDirectory(`${what}: cannot replace a file with a directory`)
      if (source.record.type !== 'dir' && target.record.type === 'dir') throw new IsDirectory(`${what}: cannot replace a directory with a file`)
      if (target.record.type === 'dir' && (await this.listKeys(toPath, what)).length > 0) throw new NotEmpty(`${what}: the target directory is not empty`)
    }
    const replaced = target === null ? null : this.attributesOf(target.record, target.metadata)

    if (source.record.type === 'file') {
      if (target !== null) await this.withFileLock(target.record.fileId, () => this.dropStaged(target.record.fileId))
      // Staged data follows the file id, so the next upload goes to the new key.
      await this.withFileLock(source.record.fileId, () => this.moveFile(fromPath, toPath, what))
    } else {
      if (target !== null) await this.deleteKey(dirKey(toPath), what)
      await this.moveDir(fromPath, toPath, what)
    }

    this.ids.move(fromPath, toPath)
    this.touchDir(fromDirPath)
    if (toDirPath !== fromDirPath) this.touchDir(toDirPath)
    const moved = this.ids.get(toPath)
    if (moved !== undefined) this.ids.update(toPath, { ...moved, ctimeMs: Date.now() })

    if (replaced === null) return null
    replaced.nlink = 0
    return replaced
  }

  /**
   * Moves one object with the service's rename where it has one, and otherwise with a
   * whole-object write of a copy, which replaces the target in one step, then a delete of the source.
   * NOTE: a WebDAV MOVE over an existing file may delete the target before it renames the source
   * (RFC 4918, section 9.9.3), so on webdav volumes a reader can find no target for a moment.
   */
  private async moveFile(fromPath: string, toPath: string, what: string): Promise<void> {
    const fromKey = fileKey(fromPath)
    const toKey = fileKey(toPath)
    try {
      if (this.canRename) {
        await this.changing([fromKey, toKey], () => this.operator.rename(fromKey, toKey))
        return
      }
      // NOTE: the copy passes through memory whole.
      await this.changing([fromKey, toKey], async () => {
        await this.operator.write(toKey, await this.operator.read(fromKey))
        await this.operator.delete(fromKey)
      })
      await this.restrictHostMode(toKey, 'file')
    } catch (error) {
      throw toFsalError(error, what)
    }
  }

  /**
   * Moves a directory key by key, because OpenDAL renames no directory.
   * NOTE: not atomic: a failure part way leaves the tree split between both names, and readers
   * meanwhile see it half moved.
   */
  private async moveDir(fromPath: string, toPath: string, what: string): Promise<void> {
    const keys = await this.listKeys(fromPath, what)
    const names = keys.map((key) => nameOfListedKey(fromPath, key))
    const unreachable = keys.find((_, index) => names[index] === null)
    if (unreachable !== undefined) {
      // Moving the rest would leave this object behind under the old name.
      throw new NotSupported(`${what}: the directory holds the object ${JSON.stringify(unreachable)}, which no NFS name maps to; move or rename it with the storage service's own tools first`)
    }
    try {
      await this.changing([dirKey(toPath)], () => this.operator.createDir(dirKey(toPath)))
      await this.restrictHostMode(dirKey(toPath), 'dir')
    } catch (error) {
      throw toFsalError(error, what)
    }
    for (const [index, key] of keys.entries()) {
      const name = names[index]!
      if (key.endsWith('/')) await this.moveDir(childPath(fromPath, name), childPath(toPath, name), what)
      else await this.moveFile(childPath(fromPath, name), childPath(toPath, name), what)
    }
    await this.deleteKey(dirKey(fromPath), what)
  }

  async setattr(node: FsalNode, changes: SetAttributes): Promise<FileAttributes> {
    const what = `setattr ${node.path()}`
    const { path, record, metadata } = await this.current(node, what)
    const nowMs = Date.now()
    const updated: ObjectRecord = { ...record, ctimeMs: nowMs }
    if (changes.mode !== undefined) updated.mode = changes.mode & 0o7777
    if (changes.atime !== undefined) updated.atimeMs = msOf(changes.atime, nowMs)
    if (changes.mtime !== undefined) updated.mtimeMs = msOf(changes.mtime, nowMs)

    const sizeBytes = changes.sizeBytes
    if (sizeBytes !== undefined) {
      if (record.type !== 'file') throw new InvalidArgument(`${what}: cannot set the size of a ${record.type}`)
      const currentBytes = this.attributesOf(record, metadata).sizeBytes
      if (sizeBytes !== currentBytes) {
        if (changes.mtime === undefined) updated.mtimeMs = nowMs
        // SETATTR is synchronous in NFSv3, so the new size is uploaded before the reply.
        await this.withFileLock(record.fileId, async () => {
          const staged = await this.stage(record.fileId, what, sizeBytes)
          await staged.truncate(sizeBytes)
          await this.upload(record.fileId, what)
        })
      }
    }

    this.ids.update(path, updated)
    const fresh = await this.find(path, what)
    return this.attributesOf(fresh?.record ?? updated, fresh?.metadata ?? metadata)
  }

  async fsstat(): Promise<FsStat> {
    return {
      totalBytes: REPORTED_CAPACITY_BYTES,
      freeBytes: REPORTED_CAPACITY_BYTES,
      availableBytes: REPORTED_CAPACITY_BYTES,
      totalFiles: REPORTED_FILES,
      freeFiles: REPORTED_FILES,
      availableFiles: REPORTED_FILES
    }
  }

  async scan(root: FsalNode, visit: ScanVisitor): Promise<void> {
    const pending: FsalNode[] = [root]
    while (pending.length > 0) {
      const dir = pending.pop()!
      const dirPath = this.pathOf(dir)
      let keys: string[]
      try {
        keys = await this.listKeys(dirPath, `scan ${dir.path()}`)
      } catch (error) {
        // A directory removed while the walk runs is skipped, as the other providers do.
        if (error instanceof Stale && dir !== root) continue
        throw error
      }
      for (const key of keys) {
        const name = nameOfListedKey(dirPath, key)
        if (name === null) {
          this.logger.debug({ key }, `scan ${dir.path()}: no name has this key, so the scan skips it`)
          continue
        }
        const found = await this.find(childPath(dirPath, name), `scan ${dir.path()}`)
        if (found === null) continue
        const child = visit(dir, name, this.attributesOf(found.record, found.metadata))
        if (child.type === 'dir') pending.push(child)
      }
    }
  }

  forget(_node: FsalNode): void {
    // Staged data is kept by file id until it is uploaded, whether or not AegisFSAL tracks the node.
  }

  /** Uploads every staged file now; for tests and an orderly shutdown. */
  async flushAll(): Promise<void> {
    for (const fileId of [...this.staged.keys()]) await this.withFileLock(fileId, () => this.upload(fileId, 'flush'))
  }
}

/** Deletes a volume's state directory; for callers that delete the volume itself. */
export async function removeStateDir(stateDir: string): Promise<void> {
  await rm(stateDir, { recursive: true, force: true })
}
