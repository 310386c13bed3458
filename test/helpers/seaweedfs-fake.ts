/**
 * An in-memory fake of the SeaweedFS Filer HTTP API, for tests of the SeaweedFS storage provider
 * on machines where no `weed` binary can run. It listens on 127.0.0.1 only.
 *
 * The behaviour follows the filer's HTTP handlers as published in SeaweedFS 4.x (the
 * `filerHandler` dispatch, `GetOrHeadHandler`, `listDirectoryHandler`, `PostHandler`, `autoChunk`,
 * `saveMetaData`, `mkdir`, `move`, `DeleteHandler`) and the filer core they call (`CreateEntry`,
 * `UpdateEntry`, `DeleteEntryMetaAndData`, `AtomicRenameEntry`, `CanRename`). Each rule is stated
 * next to the code that applies it. The defaults are those of `weed filer` without options:
 * `-maxMB=4`, `-dirListLimit=100000`, `-saveToFilerLimit=0` (so no file is stored inline in the
 * metadata), directory data exposed, no JWT, `max_file_name_length` 255.
 *
 * Not modelled: volume servers (chunk ids are made up), TTL, WORM rules, JWT, CORS on ordinary
 * requests, object tagging, hard links, remote storage, S3 directory objects and `saveInside`.
 * Requests with `tagging`, `ttl`, `saveInside` or `skipCheckParentDir` get 501, so that a client
 * never relies on them by accident.
 */
import { createHash, randomBytes } from 'node:crypto'
import * as http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** One request as the fake received it: the method, the percent-decoded path and the query. */
export interface FakeFilerRequest {
  method: string
  /** Decoded path, as the filer's handlers read it from `r.URL.Path`, or the raw path when it could not be decoded. */
  path: string
  /** First value of each query parameter, decoded as Go's `url.ParseQuery` does. */
  query: Record<string, string>
}

/** What a fault hook makes the fake do with one request instead of handling it. */
export type FakeFilerFault =
  /** Respond with this status and an optional text body. */
  | { action: 'status'; status: number; body?: string }
  /** Destroy the connection without a response. */
  | { action: 'reset' }
  /** Never respond. stop() destroys the connection. */
  | { action: 'hang' }

export interface FakeFilerOptions {
  /** Latency added to every response, in milliseconds (default 0). */
  delayMs?: number
  /** How a filer marked down by setDown(true) fails: connections reset (default) or 503 responses. */
  downMode?: 'reset' | 'unavailable'
  /** Chunk size in MiB used for uploads without `maxMB`, as `weed filer -maxMB` (default 4). */
  maxMB?: number
  /** Longest accepted name in bytes, as `filer.options.max_file_name_length` (default 255). */
  maxFilenameLengthBytes?: number
  /** Hook called for every request before it is handled. A returned fault replaces the handling. */
  fault?: (request: FakeFilerRequest) => FakeFilerFault | undefined
}

/** A snapshot of one entry's metadata, for assertions. */
export interface FakeFilerStat {
  isDirectory: boolean
  /** Permission bits, without the directory bit. */
  mode: number
  sizeBytes: number
  inode: number
  mtimeMs: number
  crtimeMs: number
  mime: string
}

export interface FakeFiler {
  /** Base URL, http://127.0.0.1:PORT. */
  url: string
  /** Closes the listener and every open connection. */
  stop(): Promise<void>
  /** Returns a copy of the file's content, or undefined when the path is missing or a directory. */
  readFile(path: string): Buffer | undefined
  /** Returns whether a file or directory exists at the decoded path. "/" always exists. */
  exists(path: string): boolean
  /** Returns the names in a directory in the filer's order (UTF-8 byte order), or undefined. */
  listDirectory(path: string): string[] | undefined
  /** Returns a snapshot of the entry's metadata, or undefined when the path is missing. */
  stat(path: string): FakeFilerStat | undefined
  /** Every request the HTTP parser delivered, in arrival order, including those a fault handled. */
  requests: FakeFilerRequest[]
  /** Marks the filer unreachable (see FakeFilerOptions.downMode) or reachable again. */
  setDown(down: boolean): void
  /** Latency added to every response, in milliseconds. Tests may change it while the fake runs. */
  delayMs: number
}

/** Version string the filer reports as `SeaweedFS <SizeLimit> <major.minor>` in the Server header. */
const FILER_VERSION = '30GB 4.44'

/** Go's `os.ModeDir`, the bit that marks a directory in an entry's `Mode`. */
const GO_MODE_DIR = 2 ** 31

/** Default file and `mkdir` mode when the request has no `mode` parameter. */
const DEFAULT_MODE = 0o660

/** Default page size of a directory listing without `limit` (`weed filer -dirListLimit`). */
const DIR_LISTING_LIMIT = 100_000

/** `filer_pb.ErrNotFound` message, which the move handler quotes when the source is missing. */
const NOT_FOUND_MESSAGE = 'filer: no entry is found in filer store'

/** Folder under which each top-level directory is an S3 bucket (`filer.options.buckets_folder`). */
const BUCKETS_FOLDER = '/buckets'

/**
 * Go's built-in `mime.TypeByExtension` table, used when an entry has no stored MIME type. The real
 * filer also reads the host's mime.types files, so it may name more extensions than this.
 */
const MIME_BY_EXTENSION: Record<string, string> = {
  '.avif': 'image/avif',
  '.css': 'text/css; charset=utf-8',
  '.gif': 'image/gif',
  '.htm': 'text/html; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.mjs': 'text/javascript; charset=utf-8',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.webp': 'image/webp',
  '.xml': 'text/xml; charset=utf-8'
}

// ---------------------------------------------------------------------------------------------
// Entries and the store
// ---------------------------------------------------------------------------------------------

/** One stored piece of a file, as the filer records it in `chunks` (the id is made up). */
interface FakeChunk {
  fileId: string
  volumeId: number
  fileKey: number
  cookie: number
  offset: number
  sizeBytes: number
  modifiedTsNs: bigint
  /** Base64 MD5 of the chunk's bytes, as the volume server reports it. */
  eTag: string
}

interface FakeEntry {
  path: string
  isDirectory: boolean
  /** Permission bits only; the directory bit is added when the entry is encoded. */
  perm: number
  uid: number
  gid: number
  mime: string
  /** Whole seconds in milliseconds, because the filer store keeps Unix seconds. */
  mtimeMs: number
  crtimeMs: number
  inode: number
  /** MD5 of the last whole-file upload; cleared by appends and offset writes. */
  md5: Buffer | null
  fileSizeBytes: number
  /** Written bytes; may be shorter than fileSizeBytes (the rest reads as zeros) or have spare capacity. */
  data: Buffer
  chunks: FakeChunk[]
  extended: Map<string, Buffer> | null
}

type StoreErrorKind = 'notFound' | 'parentIsFile' | 'existingIsDirectory' | 'existingIsFile' | 'notEmpty' | 'nameTooLong' | 'invalid'

/** Error thrown by the store. Handlers map its `kind` to a status, as the filer maps error texts. */
class FakeStoreError extends Error {
  readonly kind: StoreErrorKind

  constructor(kind: StoreErrorKind, message: string) {
    super(message)
    this.name = 'FakeStoreError'
    this.kind = kind
  }
}

function wholeSecondsNowMs(): number {
  return Math.floor(Date.now() / 1000) * 1000
}

function parentOf(path: string): string {
  const index = path.lastIndexOf('/')
  return index <= 0 ? '/' : path.slice(0, index)
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

function childPath(directory: string, name: string): string {
  return directory === '/' ? `/${name}` : `${directory}/${name}`
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** Returns the S3 bucket a path lies in, as `Filer.DetectBucket` does, or "". */
function bucketOf(path: string): string {
  if (!path.startsWith(`${BUCKETS_FOLDER}/`)) {
    return ''
  }

  const rest = path.slice(BUCKETS_FOLDER.length + 1)
  const slash = rest.indexOf('/')
  return slash < 0 ? rest : rest.slice(0, slash)
}

class FakeStore {
  private readonly entries = new Map<string, FakeEntry>()
  private readonly children = new Map<string, Set<string>>()
  /** Next inode number. The filer never hands out 0 or 1, and an entry keeps its inode across overwrite and rename. */
  private nextInode = 1000
  private nextFileKey = 1
  readonly root: FakeEntry
  readonly uid = process.getuid?.() ?? 0
  readonly gid = process.getgid?.() ?? 0

  constructor(readonly maxFilenameLengthBytes: number) {
    // The root is not stored. The filer serves it from an in-memory entry with mode 0755 and
    // the start time. NOTE: versions whose root literal sets no inode report Inode 0 for "/".
    this.root = this.newEntry('/', true, 0o755)
    this.root.inode = 1
    this.root.mtimeMs = Date.now()
    this.root.crtimeMs = this.root.mtimeMs
  }

  newEntry(path: string, isDirectory: boolean, perm: number): FakeEntry {
    const nowMs = wholeSecondsNowMs()
    return {
      path,
      isDirectory,
      perm,
      uid: this.uid,
      gid: this.gid,
      mime: '',
      mtimeMs: nowMs,
      crtimeMs: nowMs,
      inode: 0,
      md5: null,
      fileSizeBytes: 0,
      data: Buffer.alloc(0),
      chunks: [],
      extended: null
    }
  }

  /** Cuts `bytes` into chunks of at most `chunkSizeBytes`, starting at file offset `offset`. */
  makeChunks(bytes: Buffer, offset: number, chunkSizeBytes: number): FakeChunk[] {
    const chunks: FakeChunk[] = []
    for (let start = 0; start < bytes.length; start += chunkSizeBytes) {
      const piece = bytes.subarray(start, Math.min(bytes.length, start + chunkSizeBytes))
      const fileKey = this.nextFileKey++
      const cookie = randomBytes(4).readUInt32BE(0)
      chunks.push({
        fileId: `1,${fileKey.toString(16)}${cookie.toString(16).padStart(8, '0')}`,
        volumeId: 1,
        fileKey,
        cookie,
        offset: offset + start,
        sizeBytes: piece.length,
        modifiedTsNs: process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n,
        eTag: createHash('md5').update(piece).digest('base64')
      })
    }
    return chunks
  }

  find(path: string): FakeEntry | undefined {
    return path === '/' ? this.root : this.entries.get(path)
  }

  /** Returns the sorted names in a directory. */
  childNames(directory: string): string[] {
    const names = [...(this.children.get(directory) ?? [])]
    names.sort(compareNames)
    return names
  }

  /**
   * Creates or replaces an entry, as `Filer.CreateEntry`. Missing parents are created with the
   * entry's owner and mode plus 0111, and a parent that is a file fails the write. A replacement
   * keeps the old entry's crtime and inode, and may not turn a file into a directory or back.
   */
  createEntry(entry: FakeEntry): void {
    if (entry.path === '/') {
      return
    }

    if (Buffer.byteLength(nameOf(entry.path), 'utf8') > this.maxFilenameLengthBytes) {
      throw new FakeStoreError('nameTooLong', 'entry name too long')
    }

    const existing = this.entries.get(entry.path)
    if (existing === undefined) {
      this.ensureParentDirectories(entry)
      if (entry.inode === 0) {
        entry.inode = this.nextInode++
      }
      this.insert(entry)
      return
    }

    if (existing.isDirectory && !entry.isDirectory) {
      throw new FakeStoreError('existingIsDirectory', `update entry ${entry.path}: existing ${entry.path} is a directory`)
    }
    if (!existing.isDirectory && entry.isDirectory) {
      throw new FakeStoreError('existingIsFile', `update entry ${entry.path}: existing ${entry.path} is a file`)
    }

    entry.crtimeMs = existing.crtimeMs
    if (entry.inode === 0) {
      entry.inode = existing.inode
    }
    this.entries.set(entry.path, entry)
  }

  private ensureParentDirectories(entry: FakeEntry): void {
    const segments = entry.path.split('/').slice(1, -1)
    let directory = '/'
    for (const segment of segments) {
      directory = childPath(directory, segment)
      const existing = this.entries.get(directory)
      if (existing === undefined) {
        const created = this.newEntry(directory, true, entry.perm | 0o111)
        created.uid = entry.uid
        created.gid = entry.gid
        created.inode = this.nextInode++
        this.insert(created)
      } else if (!existing.isDirectory) {
        throw new FakeStoreError('parentIsFile', `${directory} is a file`)
      }
    }
  }

  private insert(entry: FakeEntry): void {
    this.entries.set(entry.path, entry)

    const parent = parentOf(entry.path)
    let names = this.children.get(parent)
    if (names === undefined) {
      names = new Set()
      this.children.set(parent, names)
    }
    names.add(nameOf(entry.path))
  }

  private remove(path: string): void {
    const entry = this.entries.get(path)
    if (entry === undefined) {
      return
    }

    if (entry.isDirectory) {
      for (const name of this.childNames(path)) {
        this.remove(childPath(path, name))
      }
      this.children.delete(path)
    }

    this.entries.delete(path)
    this.children.get(parentOf(path))?.delete(nameOf(path))
  }

  /**
   * Deletes an entry, as `Filer.DeleteEntryMetaAndData`: "/" is never deleted, and a directory
   * with children needs `recursive`.
   */
  deleteEntry(path: string, recursive: boolean): void {
    if (path === '/') {
      return
    }

    const entry = this.entries.get(path)
    if (entry === undefined) {
      throw new FakeStoreError('notFound', NOT_FOUND_MESSAGE)
    }

    if (entry.isDirectory && !recursive && (this.children.get(path)?.size ?? 0) > 0) {
      throw new FakeStoreError('notEmpty', `delete directory ${path}: fail to delete non-empty folder: ${path}`)
    }

    this.remove(path)
  }

  /**
   * Renames `oldDirectory/oldName` to `newDirectory/newName`, as `AtomicRenameEntry`. All checks
   * run before anything changes, so a failed rename leaves the tree as it was.
   */
  rename(oldDirectory: string, oldName: string, newDirectory: string, newName: string): void {
    const sourcePath = childPath(oldDirectory, oldName)

    // CanRename compares raw strings, so "/a" also rejects "/ab/x" as a destination.
    if (newDirectory.startsWith(sourcePath)) {
      throw new FakeStoreError('invalid', 'mv: can not move directory to a subdirectory of itself')
    }

    const source = this.entries.get(sourcePath)
    if (source !== undefined && source.isDirectory && parentOf(sourcePath) === BUCKETS_FOLDER) {
      throw new FakeStoreError('invalid', 'bucket renaming is not allowed')
    }
    if (bucketOf(oldDirectory) !== bucketOf(newDirectory)) {
      throw new FakeStoreError('invalid', `can not move across collection ${bucketOf(oldDirectory)} => ${bucketOf(newDirectory)}`)
    }
    if (source === undefined) {
      throw new FakeStoreError('notFound', `${oldDirectory}/${oldName} not found: ${NOT_FOUND_MESSAGE}`)
    }

    const targetPath = childPath(newDirectory, newName)
    if (targetPath === sourcePath) {
      return
    }

    if (Buffer.byteLength(newName, 'utf8') > this.maxFilenameLengthBytes) {
      throw new FakeStoreError('nameTooLong', 'entry name too long')
    }

    // An existing target must be of the same kind and, being removed without `recursive`,
    // an empty directory if it is one.
    const target = this.entries.get(targetPath)
    if (target !== undefined) {
      if (target.isDirectory && !source.isDirectory) {
        throw new FakeStoreError('existingIsDirectory', `${targetPath}: existing entry is a directory`)
      }
      if (!target.isDirectory && source.isDirectory) {
        throw new FakeStoreError('existingIsFile', `${targetPath}: existing entry is a file`)
      }
      if (target.isDirectory && (this.children.get(targetPath)?.size ?? 0) > 0) {
        throw new FakeStoreError('notEmpty', `delete directory ${targetPath}: fail to delete non-empty folder: ${targetPath}`)
      }
    }

    // The destination's missing parents are created as CreateEntry does, and a file on the way fails.
    let directory = '/'
    for (const segment of newDirectory.split('/').slice(1).filter((part) => part !== '')) {
      directory = childPath(directory, segment)
      const existing = this.entries.get(directory)
      if (existing !== undefined && !existing.isDirectory) {
        throw new FakeStoreError('parentIsFile', `${directory} is a file`)
      }
    }

    if (target !== undefined) {
      this.remove(targetPath)
    }

    this.moveSubtree(source, targetPath)
  }

  private moveSubtree(source: FakeEntry, targetPath: string): void {
    const sourcePath = source.path
    const childNames = source.isDirectory ? this.childNames(sourcePath) : []

    // The moved entry keeps its attributes, inode and times; only the path changes.
    const moved: FakeEntry = { ...source, path: targetPath }
    this.createEntry(moved)

    for (const name of childNames) {
      const child = this.entries.get(childPath(sourcePath, name))
      if (child !== undefined) {
        this.moveSubtree(child, childPath(targetPath, name))
      }
    }

    this.entries.delete(sourcePath)
    this.children.delete(sourcePath)
    this.children.get(parentOf(sourcePath))?.delete(nameOf(sourcePath))
  }
}

// ---------------------------------------------------------------------------------------------
// File content
// ---------------------------------------------------------------------------------------------

/** Spare capacity added at most when a file's buffer grows, so a large file never doubles in memory. */
const MAX_GROWTH_BYTES = 64 * 1024 * 1024

/**
 * Writes `bytes` at `offset`. The buffer grows by its own size, up to 64 MiB at a time, so that a
 * run of sequential writes copies each byte only a few times.
 */
function writeAt(entry: FakeEntry, offset: number, bytes: Buffer): void {
  const end = offset + bytes.length
  if (end > entry.data.length) {
    const grown = Buffer.alloc(Math.max(end, entry.data.length + Math.min(entry.data.length, MAX_GROWTH_BYTES)))
    entry.data.copy(grown, 0, 0, entry.data.length)
    entry.data = grown
  }
  bytes.copy(entry.data, offset)
}

/** Returns a copy of `length` bytes at `start`. Bytes never written read as zeros. */
function readRange(entry: FakeEntry, start: number, length: number): Buffer {
  const result = Buffer.alloc(length)
  const available = Math.min(entry.data.length, start + length)
  if (available > start) {
    entry.data.copy(result, 0, start, available)
  }
  return result
}

/** Total extent of the chunk list, as `filer.TotalSize`. */
function chunksExtent(chunks: FakeChunk[]): number {
  return chunks.reduce((extent, chunk) => Math.max(extent, chunk.offset + chunk.sizeBytes), 0)
}

/**
 * Returns the entry's ETag without quotes, as `filer.ETagEntry`: the hex MD5 of the last whole
 * upload if it is known, else the hex MD5 of a single chunk, else the MD5 of the concatenated chunk
 * MD5s followed by "-<chunk count>".
 * NOTE: past 1000 small chunks the real filer merges chunks, which changes this value; the fake
 * keeps every chunk.
 */
function entryETag(entry: FakeEntry): string {
  if (entry.md5 !== null) {
    return entry.md5.toString('hex')
  }

  if (entry.chunks.length === 1) {
    return Buffer.from(entry.chunks[0].eTag, 'base64').toString('hex')
  }

  const digests = Buffer.concat(entry.chunks.map((chunk) => Buffer.from(chunk.eTag, 'base64')))
  return `${createHash('md5').update(digests).digest('hex')}-${entry.chunks.length}`
}

// ---------------------------------------------------------------------------------------------
// JSON encoding of entries (Go's encoding/json of filer.Entry)
// ---------------------------------------------------------------------------------------------

/** Formats a time as Go's time.Time JSON (RFC 3339, fraction only when non-zero, trailing zeros cut). */
function goTimeJson(timeMs: number): string {
  const iso = new Date(timeMs).toISOString()
  return iso.replace(/\.(\d*?)0*Z$/, (_match, digits: string) => (digits === '' ? 'Z' : `.${digits}Z`))
}

function goFileMode(entry: FakeEntry): number {
  return (entry.isDirectory ? GO_MODE_DIR : 0) + entry.perm
}

function chunkJson(chunk: FakeChunk): Record<string, unknown> {
  // Protobuf-generated Go structs carry `json:"name,omitempty"` tags, so a zero offset is left out.
  const json: Record<string, unknown> = { file_id: chunk.fileId }
  if (chunk.offset !== 0) {
    json.offset = chunk.offset
  }
  json.size = chunk.sizeBytes
  json.modified_ts_ns = Number(chunk.modifiedTsNs)
  json.e_tag = chunk.eTag
  json.fid = { volume_id: chunk.volumeId, file_key: chunk.fileKey, cookie: chunk.cookie }
  return json
}

/**
 * Encodes an entry as the filer does for `metadata=true` and directory listings. Times are whole
 * seconds because the store keeps Unix seconds; the real filer prints them in its local time zone,
 * the fake in UTC.
 */
function entryJson(entry: FakeEntry, includeChunks: boolean): Record<string, unknown> {
  const json: Record<string, unknown> = {
    FullPath: entry.path,
    Mtime: goTimeJson(entry.mtimeMs),
    Crtime: goTimeJson(entry.crtimeMs),
    Mode: goFileMode(entry),
    Uid: entry.uid,
    Gid: entry.gid,
    Mime: entry.mime,
    TtlSec: 0,
    UserName: '',
    GroupNames: null,
    SymlinkTarget: '',
    Md5: entry.md5 === null ? null : entry.md5.toString('base64'),
    FileSize: entry.fileSizeBytes,
    Rdev: 0,
    Inode: entry.inode,
    Extended: entry.extended === null ? null : Object.fromEntries([...entry.extended].map(([key, value]) => [key, value.toString('base64')]))
  }

  if (includeChunks && entry.chunks.length > 0) {
    json.chunks = entry.chunks.map(chunkJson)
  }

  json.HardLinkId = null
  json.HardLinkCounter = 0
  json.Content = null
  json.Remote = null
  json.Quota = 0
  json.WORMEnforcedAtTsNs = 0
  return json
}

// ---------------------------------------------------------------------------------------------
// Request target parsing (Go's net/url and http.ServeMux)
// ---------------------------------------------------------------------------------------------

/** Decodes %XX sequences into bytes, or returns undefined for a malformed sequence as Go's url.PathUnescape does. */
function percentDecodeBytes(text: string, plusIsSpace: boolean): Buffer | undefined {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    if (char === '%') {
      const hex = text.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        return undefined
      }
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (char === '+' && plusIsSpace) {
      bytes.push(0x20)
    } else {
      // Node hands the request target over as latin1, one character per byte.
      bytes.push(char.charCodeAt(0) & 0xff)
    }
  }
  return Buffer.from(bytes)
}

function decodeUtf8Strict(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * Parses a query string as Go's `url.ParseQuery`: pairs split on "&", "+" means space, and a pair
 * with a ";" or a malformed escape is dropped (Go 1.17 and later).
 */
function parseGoQuery(rawQuery: string): Map<string, string> {
  const query = new Map<string, string>()
  for (const pair of rawQuery.split('&')) {
    if (pair === '' || pair.includes(';')) {
      continue
    }

    const equals = pair.indexOf('=')
    const rawKey = equals < 0 ? pair : pair.slice(0, equals)
    const rawValue = equals < 0 ? '' : pair.slice(equals + 1)
    const keyBytes = percentDecodeBytes(rawKey, true)
    const valueBytes = percentDecodeBytes(rawValue, true)
    if (keyBytes === undefined || valueBytes === undefined) {
      continue
    }

    const key = keyBytes.toString('utf8')
    if (!query.has(key)) {
      query.set(key, valueBytes.toString('utf8'))
    }
  }
  return query
}

/** Go's `path.Clean`. */
function cleanGoPath(path: string): string {
  const rooted = path.startsWith('/')
  const parts: string[] = []
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') {
      continue
    }
    if (segment === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') {
        parts.pop()
      } else if (!rooted) {
        parts.push('..')
      }
      continue
    }
    parts.push(segment)
  }

  const joined = parts.join('/')
  if (rooted) {
    return `/${joined}`
  }
  return joined === '' ? '.' : joined
}

/** Cleans a path as Go's ServeMux does before routing: rooted, no dot segments, trailing "/" kept. */
function cleanMuxPath(path: string): string {
  const rooted = path.startsWith('/') ? path : `/${path}`
  let cleaned = cleanGoPath(rooted)
  if (rooted.endsWith('/') && cleaned !== '/') {
    cleaned += '/'
  }
  return cleaned
}

/** Cleans a path as the move handler's `clearName`: Go's path.Clean keeping a trailing "/", undefined if relative. */
function clearName(name: string): string | undefined {
  const slashed = name.endsWith('/')
  let cleaned = cleanGoPath(name)
  if (slashed && !cleaned.endsWith('/')) {
    cleaned += '/'
  }
  return cleaned.startsWith('/') ? cleaned : undefined
}

/**
 * Returns why the fake cannot store a decoded path, or undefined when every segment is an ordinary
 * name. NOTE: the real filer accepts empty, "." and ".." segments that reach it percent-encoded,
 * and stores them under odd keys. The fake rejects them with 400 so that a client bug is visible.
 */
function invalidPathReason(path: string, allowTrailingSlash: boolean): string | undefined {
  if (path === '/') {
    return undefined
  }

  const trimmed = allowTrailingSlash && path.endsWith('/') ? path.slice(0, -1) : path
  for (const segment of trimmed.split('/').slice(1)) {
    if (segment === '' || segment === '.' || segment === '..') {
      return `invalid path ${JSON.stringify(path)}: empty, "." or ".." segment`
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Range requests (the filer's parseRange, which follows Go's net/http)
// ---------------------------------------------------------------------------------------------

interface ByteRange {
  start: number
  length: number
}

/** Parses a Range header against a size, as the filer's `parseRange`. A string result is the error text. */
function parseRangeHeader(header: string, sizeBytes: number): ByteRange[] | string {
  const prefix = 'bytes='
  if (!header.startsWith(prefix)) {
    return 'invalid range'
  }

  const ranges: ByteRange[] = []
  let noOverlap = false
  for (const rawPart of header.slice(prefix.length).split(',')) {
    const part = rawPart.trim()
    if (part === '') {
      continue
    }

    const dash = part.indexOf('-')
    if (dash < 0) {
      return 'invalid range'
    }
    const startText = part.slice(0, dash).trim()
    const endText = part.slice(dash + 1).trim()

    if (startText === '') {
      // "-N" is the last N bytes.
      if (!/^\+?\d+$/.test(endText)) {
        return 'invalid range'
      }
      const suffixLength = Math.min(Number(endText), sizeBytes)
      ranges.push({ start: sizeBytes - suffixLength, length: suffixLength })
      continue
    }

    if (!/^\+?\d+$/.test(startText)) {
      return 'invalid range'
    }
    const start = Number(startText)
    if (start >= sizeBytes) {
      noOverlap = true
      continue
    }

    if (endText === '') {
      ranges.push({ start, length: sizeBytes - start })
      continue
    }
    if (!/^\+?\d+$/.test(endText) || start > Number(endText)) {
      return 'invalid range'
    }
    const end = Math.min(Number(endText), sizeBytes - 1)
    ranges.push({ start, length: end - start + 1 })
  }

  if (noOverlap && ranges.length === 0) {
    return 'invalid range: failed to overlap'
  }
  return ranges
}

function contentRange(range: ByteRange, sizeBytes: number): string {
  return `bytes ${range.start}-${range.start + range.length - 1}/${sizeBytes}`
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data (the first part only, as doPostAutoChunk reads it)
// ---------------------------------------------------------------------------------------------

/** Go's io.ErrUnexpectedEOF text, for which the filer responds with its "cancelled" status, 499. */
const IO_UNEXPECTED_EOF = 'unexpected EOF'

interface MultipartFirstPart {
  fileName: string
  contentType: string
  data: Buffer
}

/** Parses `a; b="c"; d*=UTF-8''e` parameters as Go's mime.ParseMediaType, returning lower-case keys. */
function parseHeaderParams(value: string): Map<string, string> {
  const params = new Map<string, string>()
  const pattern = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g
  for (const match of value.matchAll(pattern)) {
    const key = match[1].toLowerCase()
    const quoted = match[2]
    const token = match[3]
    let parameterValue = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (token ?? '').trim()
    if (key.endsWith('*')) {
      // RFC 2231: charset'language'percent-encoded-value.
      const pieces = parameterValue.split("'")
      const decoded = pieces.length === 3 ? percentDecodeBytes(pieces[2], false) : undefined
      if (decoded !== undefined) {
        parameterValue = decoded.toString('utf8')
        params.set(key.slice(0, -1), parameterValue)
      }
      continue
    }
    if (!params.has(key)) {
      params.set(key, parameterValue)
    }
  }
  return params
}

/** Go's filepath.Base on Unix. */
function goPathBase(path: string): string {
  if (path === '') {
    return '.'
  }
  const trimmed = path.replace(/\/+$/, '')
  if (trimmed === '') {
    return '/'
  }
  return trimmed.slice(trimmed.lastIndexOf('/') + 1)
}

function parseFirstMultipartPart(body: Buffer, contentTypeHeader: string): MultipartFirstPart | string {
  const mediaType = contentTypeHeader.split(';')[0].trim().toLowerCase()
  if (mediaType !== 'multipart/form-data') {
    return "request Content-Type isn't multipart/form-data"
  }

  const boundary = parseHeaderParams(contentTypeHeader).get('boundary')
  if (boundary === undefined || boundary === '') {
    return 'no multipart boundary param in Content-Type'
  }

  const delimiter = Buffer.from(`--${boundary}`)
  const first = body.indexOf(delimiter)
  if (first < 0) {
    return 'multipart: NextPart: EOF'
  }

  const afterDelimiter = first + delimiter.length
  if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') {
    return 'EOF'
  }

  const headersEnd = body.indexOf('\r\n\r\n', afterDelimiter)
  if (headersEnd < 0) {
    return 'multipart: NextPart: EOF'
  }

  const headers = new Map<string, string>()
  for (const line of body.subarray(afterDelimiter, headersEnd).toString('utf8').split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
    }
  }

  const dataStart = headersEnd + 4
  const dataEnd = body.indexOf(Buffer.from(`\r\n--${boundary}`), dataStart)
  if (dataEnd < 0) {
    return IO_UNEXPECTED_EOF
  }

  const disposition = headers.get('content-disposition') ?? ''
  const rawFileName = parseHeaderParams(disposition).get('filename') ?? ''
  return {
    fileName: rawFileName === '' ? '' : goPathBase(rawFileName),
    contentType: headers.get('content-type') ?? '',
    data: body.subarray(dataStart, dataEnd)
  }
}

// ---------------------------------------------------------------------------------------------
// Name patterns for listings (Go's filepath.Match)
// ---------------------------------------------------------------------------------------------

/** Matches a name against a Go filepath.Match pattern, or returns undefined for a malformed pattern. */
function goFilepathMatch(pattern: string, name: string): boolean | undefined {
  let source = '^'
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]
    if (char === '*') {
      source += '[^/]*'
    } else if (char === '?') {
      source += '[^/]'
    } else if (char === '\\') {
      i++
      if (i >= pattern.length) {
        return undefined
      }
      source += pattern[i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    } else if (char === '[') {
      const close = pattern.indexOf(']', i + 2)
      if (close < 0) {
        return undefined
      }
      let body = pattern.slice(i + 1, close)
      const negated = body.startsWith('^')
      if (negated) {
        body = body.slice(1)
      }
      source += `[${negated ? '^' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`
      i = close
    } else {
      source += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    }
  }

  try {
    return new RegExp(`${source}$`, 'u').test(name)
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

function sendEmpty(response: http.ServerResponse, status: number): void {
  response.statusCode = status
  response.setHeader('Content-Length', '0')
  response.end()
}

/** Sends JSON as the filer's writeJson: compact, or indented by two spaces with `pretty`. */
function sendJson(response: http.ServerResponse, query: Map<string, string>, status: number, body: unknown): void {
  const text = (query.get('pretty') ?? '') !== '' ? JSON.stringify(body, null, 2) : JSON.stringify(body)
  const bytes = Buffer.from(text, 'utf8')
  response.statusCode = status
  response.setHeader('Content-Type', 'application/json')
  response.setHeader('Content-Length', String(bytes.length))
  response.end(bytes)
}

/** Sends `{"error": message}`, the filer's writeJsonError. */
function sendJsonError(response: http.ServerResponse, query: Map<string, string>, status: number, message: string): void {
  sendJson(response, query, status, { error: message })
}

/** Sends a plain-text error as Go's http.Error. */
function sendTextError(response: http.ServerResponse, status: number, message: string): void {
  const bytes = Buffer.from(`${message}\n`, 'utf8')
  response.statusCode = status
  response.setHeader('Content-Type', 'text/plain; charset=utf-8')
  response.setHeader('X-Content-Type-Options', 'nosniff')
  response.setHeader('Content-Length', String(bytes.length))
  response.end(bytes)
}

/** Go's url.QueryEscape, which the filer applies to the file name in Content-Disposition. */
function goQueryEscape(text: string): string {
  let escaped = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte)
    if (/[A-Za-z0-9\-_.~]/.test(char)) {
      escaped += char
    } else if (byte === 0x20) {
      escaped += '+'
    } else {
      escaped += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
    }
  }
  return escaped
}

function isGoTrue(value: string): boolean {
  return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)
}

/** Parses an octal `mode` parameter; the filer falls back to 0660 when it is missing or invalid. */
function parseModeParameter(query: Map<string, string>): number {
  const text = query.get('mode') ?? ''
  if (!/^[0-7]+$/.test(text)) {
    return DEFAULT_MODE
  }
  const mode = parseInt(text, 8)
  return mode > 0xffffffff ? DEFAULT_MODE : mode & 0o7777
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

// ---------------------------------------------------------------------------------------------
// The fake filer
// ---------------------------------------------------------------------------------------------

interface ParsedRequest {
  record: FakeFilerRequest
  method: string
  /** Decoded path. */
  path: string
  query: Map<string, string>
  headers: http.IncomingHttpHeaders
}

function headerValue(headers: http.IncomingHttpHeaders, name: string): string {
  const value = headers[name]
  if (Array.isArray(value)) {
    return value[0] ?? ''
  }
  return value ?? ''
}

class FakeFilerServer implements FakeFiler {
  url = ''
  requests: FakeFilerRequest[] = []
  delayMs: number

  private readonly server: http.Server
  private readonly store: FakeStore
  private readonly sockets = new Set<Socket>()
  private readonly downMode: 'reset' | 'unavailable'
  private readonly defaultMaxMB: number
  private readonly fault: FakeFilerOptions['fault']
  private down = false

  constructor(options: FakeFilerOptions) {
    this.delayMs = options.delayMs ?? 0
    this.downMode = options.downMode ?? 'reset'
    this.defaultMaxMB = options.maxMB ?? 4
    this.fault = options.fault
    this.store = new FakeStore(options.maxFilenameLengthBytes ?? 255)

    // Uploads of a few hundred MiB may take longer than Node's default request timeout.
    this.server = http.createServer({ requestTimeout: 0 }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) {
          sendTextError(response, 500, `fake filer failed: ${String(error)}`)
        } else {
          response.destroy()
        }
      })
    })

    this.server.on('connection', (socket) => {
      if (this.down && this.downMode === 'reset') {
        socket.destroy()
        return
      }
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const address = this.server.address() as AddressInfo
    this.url = `http://127.0.0.1:${address.port}`
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const socket of this.sockets) {
      socket.destroy()
    }
    this.server.closeAllConnections()
    await closed
  }

  setDown(down: boolean): void {
    this.down = down
    if (down && this.downMode === 'reset') {
      for (const socket of this.sockets) {
        socket.destroy()
      }
    }
  }

  readFile(path: string): Buffer | undefined {
    const entry = this.store.find(this.normalizeDirectPath(path))
    if (entry === undefined || entry.isDirectory) {
      return undefined
    }
    return readRange(entry, 0, entry.fileSizeBytes)
  }

  exists(path: string): boolean {
    return this.store.find(this.normalizeDirectPath(path)) !== undefined
  }

  listDirectory(path: string): string[] | undefined {
    const normalized = this.normalizeDirectPath(path)
    const entry = this.store.find(normalized)
    if (entry === undefined || !entry.isDirectory) {
      return undefined
    }
    return this.store.childNames(normalized)
  }

  stat(path: string): FakeFilerStat | undefined {
    const entry = this.store.find(this.normalizeDirectPath(path))
    if (entry === undefined) {
      return undefined
    }
    return {
      isDirectory: entry.isDirectory,
      mode: entry.perm,
      sizeBytes: entry.fileSizeBytes,
      inode: entry.inode,
      mtimeMs: entry.mtimeMs,
      crtimeMs: entry.crtimeMs,
      mime: entry.mime
    }
  }

  private normalizeDirectPath(path: string): string {
    const rooted = path.startsWith('/') ? path : `/${path}`
    return rooted.length > 1 && rooted.endsWith('/') ? rooted.slice(0, -1) : rooted
  }

  // ------------------------------------------------------------------ dispatch

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const rawTarget = request.url ?? '/'
    const questionMark = rawTarget.indexOf('?')
    const rawPath = questionMark < 0 ? rawTarget : rawTarget.slice(0, questionMark)
    const rawQuery = questionMark < 0 ? '' : rawTarget.slice(questionMark + 1)
    const query = parseGoQuery(rawQuery)
    const pathBytes = percentDecodeBytes(rawPath, false)
    const decodedPath = pathBytes === undefined ? undefined : decodeUtf8Strict(pathBytes)
    const method = request.method ?? 'GET'

    const record: FakeFilerRequest = { method, path: decodedPath ?? rawPath, query: Object.fromEntries(query) }
    this.requests.push(record)

    if (this.down) {
      if (this.downMode === 'reset') {
        request.socket.destroy()
      } else {
        response.setHeader('Connection', 'close')
        sendTextError(response, 503, 'fake filer is down')
      }
      return
    }

    const fault = this.fault?.(record)
    if (fault !== undefined) {
      this.applyFault(fault, request, response)
      return
    }

    const body = await this.readBody(request)
    if (this.delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    }

    response.setHeader('Server', `SeaweedFS ${FILER_VERSION}`)

    // Go's URL parser rejects a malformed %-escape before any handler runs.
    if (pathBytes === undefined || !rawPath.startsWith('/')) {
      response.setHeader('Connection', 'close')
      sendTextError(response, 400, '400 Bad Request')
      return
    }
    // NOTE: the real filer keeps such bytes as they are, but the fake can only hold UTF-8 names.
    if (decodedPath === undefined) {
      sendTextError(response, 400, 'fake filer: path is not valid UTF-8')
      return
    }

    // ServeMux (Go 1.22 and later) cleans the escaped path and redirects when that changes it,
    // so a literal "." or ".." segment or "//" never reaches the filer.
    const cleanedRawPath = cleanMuxPath(rawPath)
    if (cleanedRawPath !== rawPath) {
      this.redirect(response, method, `${cleanedRawPath}${rawQuery === '' ? '' : `?${rawQuery}`}`)
      return
    }

    if (this.handleReservedPath(decodedPath, method, response)) {
      return
    }

    const parsed: ParsedRequest = { record, method, path: decodedPath, query, headers: request.headers }
    switch (method) {
      case 'GET':
      case 'HEAD':
        this.getOrHead(parsed, response)
        return
      case 'DELETE':
        this.deleteHandler(parsed, response)
        return
      case 'POST':
      case 'PUT':
        this.postHandler(parsed, body, response)
        return
      case 'OPTIONS':
        response.setHeader('Access-Control-Allow-Methods', 'PUT, POST, GET, DELETE, OPTIONS')
        response.setHeader('Access-Control-Expose-Headers', '*')
        response.setHeader('Access-Control-Allow-Headers', '*')
        response.setHeader('Access-Control-Allow-Credentials', 'true')
        sendEmpty(response, 200)
        return
      default:
        sendEmpty(response, 405)
    }
  }

  private applyFault(fault: FakeFilerFault, request: http.IncomingMessage, response: http.ServerResponse): void {
    if (fault.action === 'reset') {
      request.socket.destroy()
      return
    }
    if (fault.action === 'hang') {
      request.resume()
      return
    }
    response.setHeader('Connection', 'close')
    sendTextError(response, fault.status, fault.body ?? `fake filer fault ${fault.status}`)
  }

  private async readBody(request: http.IncomingMessage): Promise<Buffer> {
    const parts: Buffer[] = []
    for await (const part of request) {
      parts.push(part as Buffer)
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  private redirect(response: http.ServerResponse, method: string, location: string): void {
    // NOTE: Go versions differ in how they re-escape this Location, and the fake sends the
    // cleaned raw path unchanged.
    response.statusCode = 301
    response.setHeader('Location', location)
    if (method === 'GET' || method === 'HEAD') {
      const bytes = Buffer.from(`<a href="${escapeHtml(location)}">Moved Permanently</a>.\n\n`)
      response.setHeader('Content-Type', 'text/html; charset=utf-8')
      response.setHeader('Content-Length', String(bytes.length))
      response.end(bytes)
      return
    }
    response.setHeader('Content-Length', '0')
    response.end()
  }

  /**
   * Handles the paths the filer registers before its catch-all handler: /healthz (200 for every
   * method, so nothing can be stored there) and the bundled static files.
   * NOTE: the real filer serves its bundled files at /favicon.ico and under /seaweedfsstatic/,
   * where the fake returns 404 for every method.
   */
  private handleReservedPath(path: string, method: string, response: http.ServerResponse): boolean {
    if (path === '/healthz') {
      sendEmpty(response, 200)
      return true
    }
    if (path === '/seaweedfsstatic') {
      this.redirect(response, method, '/seaweedfsstatic/')
      return true
    }
    if (path === '/favicon.ico' || path.startsWith('/seaweedfsstatic/')) {
      sendTextError(response, 404, '404 page not found')
      return true
    }
    return false
  }

  // ------------------------------------------------------------------ GET and HEAD

  private getOrHead(request: ParsedRequest, response: http.ServerResponse): void {
    const isForDirectory = request.path.endsWith('/')
    const path = isForDirectory && request.path.length > 1 ? request.path.slice(0, -1) : request.path
    const invalid = invalidPathReason(path, false)
    if (invalid !== undefined) {
      sendJsonError(response, request.query, 400, invalid)
      return
    }

    const entry = this.store.find(path)
    if (entry === undefined) {
      sendEmpty(response, 404)
      return
    }

    if (entry.isDirectory) {
      if (request.query.get('metadata') === 'true') {
        sendJson(response, request.query, 200, entryJson(entry, true))
        return
      }
      this.sendListing(request, path, response)
      return
    }

    // A path with a trailing "/" only names S3 directory objects, never an ordinary file.
    if (isForDirectory) {
      sendEmpty(response, 404)
      return
    }

    if (request.query.get('metadata') === 'true') {
      sendJson(response, request.query, 200, entryJson(entry, true))
      return
    }

    if (this.checkPreconditions(request, entry, response)) {
      return
    }

    this.sendFile(request, entry, response)
  }

  /**
   * Applies If-Match / If-Unmodified-Since, then If-None-Match / If-Modified-Since, as the
   * filer's checkPreconditions. Returns true when it sent the response (412 or 304).
   */
  private checkPreconditions(request: ParsedRequest, entry: FakeEntry, response: http.ServerResponse): boolean {
    const eTag = entryETag(entry)
    const unquote = (value: string): string => value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
    response.setHeader('Last-Modified', new Date(entry.mtimeMs).toUTCString())

    const ifMatch = headerValue(request.headers, 'if-match')
    const ifUnmodifiedSince = headerValue(request.headers, 'if-unmodified-since')
    if (ifMatch !== '') {
      if (unquote(ifMatch) !== eTag) {
        sendEmpty(response, 412)
        return true
      }
    } else if (ifUnmodifiedSince !== '') {
      const since = Date.parse(ifUnmodifiedSince)
      if (!Number.isNaN(since) && since < entry.mtimeMs) {
        sendEmpty(response, 412)
        return true
      }
    }

    const ifNoneMatch = headerValue(request.headers, 'if-none-match')
    const ifModifiedSince = headerValue(request.headers, 'if-modified-since')
    if (ifNoneMatch !== '') {
      if (unquote(ifNoneMatch) === eTag) {
        response.setHeader('ETag', `"${eTag}"`)
        response.statusCode = 304
        response.end()
        return true
      }
    } else if (ifModifiedSince !== '') {
      const since = Date.parse(ifModifiedSince)
      if (!Number.isNaN(since) && since >= entry.mtimeMs) {
        response.setHeader('ETag', `"${eTag}"`)
        response.statusCode = 304
        response.end()
        return true
      }
    }
    return false
  }

  private sendFile(request: ParsedRequest, entry: FakeEntry, response: http.ServerResponse): void {
    const name = nameOf(entry.path)
    const extension = name.includes('.') ? name.slice(name.lastIndexOf('.')) : ''
    const mimeType = entry.mime !== '' ? entry.mime : (MIME_BY_EXTENSION[extension] ?? MIME_BY_EXTENSION[extension.toLowerCase()] ?? '')

    response.setHeader('Accept-Ranges', 'bytes')
    response.setHeader('Content-Type', mimeType !== '' ? mimeType : 'application/octet-stream')

    // Stored request headers (Seaweed-*, Cache-Control, Expires, Content-Disposition) become response headers.
    const exposed: string[] = []
    for (const [key, value] of entry.extended ?? []) {
      response.setHeader(key, value.toString('latin1'))
      if (key.startsWith('Seaweed-')) {
        exposed.push(key)
      }
    }
    exposed.push('Content-Disposition')
    response.setHeader('Access-Control-Expose-Headers', exposed.join(','))
    response.setHeader('ETag', `"${entryETag(entry)}"`)

    if (!response.hasHeader('Content-Disposition')) {
      const disposition = isGoTrue(request.query.get('dl') ?? '') ? 'attachment' : 'inline'
      response.setHeader('Content-Disposition', `${disposition}; filename="${goQueryEscape(name)}"`)
    }

    const sizeBytes = entry.fileSizeBytes
    if (request.method === 'HEAD') {
      response.statusCode = 200
      response.setHeader('Content-Length', String(sizeBytes))
      response.end()
      return
    }

    const rangeHeader = headerValue(request.headers, 'range')
    if (rangeHeader === '') {
      const bytes = readRange(entry, 0, sizeBytes)
      response.statusCode = 200
      response.setHeader('Content-Length', String(bytes.length))
      response.end(bytes)
      return
    }

    this.sendRanges(entry, rangeHeader, mimeType, response)
  }

  private sendRanges(entry: FakeEntry, rangeHeader: string, mimeType: string, response: http.ServerResponse): void {
    const sizeBytes = entry.fileSizeBytes
    const ranges = parseRangeHeader(rangeHeader, sizeBytes)
    if (typeof ranges === 'string') {
      sendTextError(response, 416, ranges)
      return
    }

    // Ranges adding up to more than the file are ignored, and the filer responds 200 with no body.
    const requestedBytes = ranges.reduce((sum, range) => sum + range.length, 0)
    if (requestedBytes > sizeBytes || ranges.length === 0) {
      sendEmpty(response, 200)
      return
    }

    if (ranges.length === 1) {
      const range = ranges[0]
      const bytes = readRange(entry, range.start, range.length)
      response.statusCode = 206
      response.setHeader('Content-Length', String(bytes.length))
      response.setHeader('Content-Range', contentRange(range, sizeBytes))
      response.end(bytes)
      return
    }

    // Several ranges: multipart/byteranges, framed as Go's multipart.Writer frames parts.
    const boundary = randomBytes(30).toString('hex')
    const pieces: Buffer[] = []
    ranges.forEach((range, index) => {
      const opening = index === 0 ? `--${boundary}\r\n` : `\r\n--${boundary}\r\n`
      pieces.push(Buffer.from(`${opening}Content-Range: ${contentRange(range, sizeBytes)}\r\nContent-Type: ${mimeType}\r\n\r\n`))
      pieces.push(readRange(entry, range.start, range.length))
    })
    pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`))
    const bytes = Buffer.concat(pieces)
    response.statusCode = 206
    response.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`)
    response.setHeader('Content-Length', String(bytes.length))
    response.end(bytes)
  }

  /**
   * Lists a directory, as listDirectoryHandler: names after `lastFileName` in byte order, at most
   * `limit` of them (default 100000), as JSON only when Accept is exactly "application/json" and as
   * an HTML page otherwise.
   * NOTE: the fake's listings carry no `chunks`. Whether a filer includes them differs between
   * versions, so callers should fetch `metadata=true` for chunk details.
   */
  private sendListing(request: ParsedRequest, path: string, response: http.ServerResponse): void {
    const limitText = request.query.get('limit') ?? ''
    let limit = /^[+-]?\d+$/.test(limitText) ? Number(limitText) : DIR_LISTING_LIMIT
    // NOTE: a negative limit reaches the store unchecked in the real filer, and the fake treats it as 0.
    limit = Math.min(Math.max(limit, 0), 2 ** 31 - 2)
    const lastFileNameInput = request.query.get('lastFileName') ?? ''
    const namePattern = request.query.get('namePattern') ?? ''
    const namePatternExclude = request.query.get('namePatternExclude') ?? ''

    // As the filer's splitPattern, the text before the first "*" (else the first "?") narrows the
    // scan. A pattern without either wildcard filters nothing.
    let prefix = ''
    let restPattern = ''
    const wildcard = namePattern.indexOf('*') >= 0 ? namePattern.indexOf('*') : namePattern.indexOf('?')
    if (wildcard >= 0) {
      prefix = namePattern.slice(0, wildcard)
      restPattern = namePattern.slice(wildcard)
    }

    const matched: FakeEntry[] = []
    for (const name of this.store.childNames(path)) {
      if (matched.length >= limit + 1) {
        break
      }
      if (lastFileNameInput !== '' && compareNames(name, lastFileNameInput) <= 0) {
        continue
      }
      if (!name.startsWith(prefix)) {
        continue
      }
      if (namePatternExclude !== '' && goFilepathMatch(namePatternExclude, name) === true) {
        continue
      }
      if (restPattern !== '' && goFilepathMatch(restPattern, name.slice(prefix.length)) === false) {
        continue
      }
      const entry = this.store.find(childPath(path, name))
      if (entry !== undefined) {
        matched.push(entry)
      }
    }

    const shouldDisplayLoadMore = matched.length >= limit + 1
    const page = shouldDisplayLoadMore ? matched.slice(0, limit) : matched
    const lastFileName = page.length > 0 ? nameOf(page[page.length - 1].path) : lastFileNameInput
    const listedPath = path === '/' ? '' : path

    if (headerValue(request.headers, 'accept') === 'application/json') {
      sendJson(response, request.query, 200, {
        Version: `${FILER_VERSION} `,
        Path: listedPath,
        // Go encodes a nil slice as null: an empty page without a truncation gives null.
        Entries: matched.length === 0 ? null : page.map((entry) => entryJson(entry, false)),
        Limit: limit,
        LastFileName: lastFileName,
        ShouldDisplayLoadMore: shouldDisplayLoadMore,
        EmptyFolder: page.length === 0
      })
      return
    }

    const rows = page.map((entry) => {
      const name = nameOf(entry.path)
      const href = `${listedPath}/${name}`.split('/').map(encodeURIComponent).join('/')
      return `<tr><td><a href="${escapeHtml(href)}">${escapeHtml(name)}${entry.isDirectory ? '/' : ''}</a></td><td>${entry.fileSizeBytes}</td></tr>`
    })
    const html = `<!DOCTYPE html>\n<html><head><title>SeaweedFS Filer</title></head><body><h1>${escapeHtml(listedPath === '' ? '/' : listedPath)}</h1><table>${rows.join('')}</table></body></html>\n`
    const bytes = Buffer.from(html, 'utf8')
    response.statusCode = 200
    response.setHeader('Content-Type', 'text/html; charset=utf-8')
    response.setHeader('Content-Length', String(bytes.length))
    response.end(bytes)
  }

  // ------------------------------------------------------------------ DELETE

  /** Deletes as DeleteHandler: 204 also for a missing path, 500 for a non-empty directory without `recursive=true`. */
  private deleteHandler(request: ParsedRequest, response: http.ServerResponse): void {
    if (request.query.has('tagging')) {
      sendJsonError(response, request.query, 501, 'fake filer: object tagging is not modelled')
      return
    }

    const path = request.path.length > 1 && request.path.endsWith('/') ? request.path.slice(0, -1) : request.path
    const invalid = invalidPathReason(path, false)
    if (invalid !== undefined) {
      sendJsonError(response, request.query, 400, invalid)
      return
    }

    try {
      this.store.deleteEntry(path, request.query.get('recursive') === 'true')
    } catch (error) {
      if (error instanceof FakeStoreError && error.kind === 'notFound') {
        sendEmpty(response, 204)
        return
      }
      sendJsonError(response, request.query, 500, (error as Error).message)
      return
    }
    sendEmpty(response, 204)
  }

  // ------------------------------------------------------------------ POST and PUT

  private postHandler(request: ParsedRequest, body: Buffer, response: http.ServerResponse): void {
    if (request.method === 'PUT' && request.query.has('tagging')) {
      sendJsonError(response, request.query, 501, 'fake filer: object tagging is not modelled')
      return
    }
    for (const unsupported of ['skipCheckParentDir', 'saveInside', 'ttl']) {
      if ((request.query.get(unsupported) ?? '') !== '') {
        sendJsonError(response, request.query, 501, `fake filer: the ${unsupported} parameter is not modelled`)
        return
      }
    }

    // PostHandler checks the last segment of the request path first and responds 414 without a body.
    const requestName = nameOf(request.path)
    if (Buffer.byteLength(requestName, 'utf8') > this.store.maxFilenameLengthBytes) {
      sendEmpty(response, 414)
      return
    }

    // `mv.from` turns any POST or PUT into a rename.
    if (request.query.has('mv.from')) {
      this.move(request, response)
      return
    }

    const isMkdir = request.method === 'POST' && headerValue(request.headers, 'content-type') === '' && request.path.endsWith('/')
    if (isMkdir) {
      this.mkdir(request, response)
      return
    }

    this.upload(request, body, response)
  }

  /** Creates a directory, as the filer's mkdir: mode from `mode` (default 0660), 409 if anything exists there. */
  private mkdir(request: ParsedRequest, response: http.ServerResponse): void {
    const path = request.path.slice(0, -1)
    // NOTE: the real filer looks up "" here, and the outcome is unclear from the code. The root
    // exists, so the fake responds as for any existing directory.
    if (path === '') {
      sendJsonError(response, request.query, 409, 'dir / already exists')
      return
    }
    const invalid = invalidPathReason(path, false)
    if (invalid !== undefined) {
      sendJsonError(response, request.query, 400, invalid)
      return
    }

    if (this.store.find(path) !== undefined) {
      sendJsonError(response, request.query, 409, `dir ${path} already exists`)
      return
    }

    const entry = this.store.newEntry(path, true, parseModeParameter(request.query))
    try {
      this.store.createEntry(entry)
    } catch (error) {
      this.sendWriteError(request, response, error)
      return
    }
    sendJson(response, request.query, 201, { name: nameOf(path) })
  }

  /** Sends an upload or mkdir failure with autoChunk's status: 409 when a parent is a file, else 500. */
  private sendWriteError(request: ParsedRequest, response: http.ServerResponse, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error)
    if (error instanceof FakeStoreError && error.kind === 'parentIsFile') {
      sendJsonError(response, request.query, 409, message)
      return
    }
    sendJsonError(response, request.query, 500, message)
  }

  /**
   * Stores an upload, as autoChunk and saveMetaData:
   * - POST needs multipart/form-data and uses its first part; PUT takes the raw body.
   * - The target is the request path, or request path + file name when the path ends in "/" or
   *   names an existing directory. PUT's file name is the path's last segment, so PUT /d where d is
   *   a directory writes /d/d.
   * - `op=append` appends at the stored size. `offset=N` with N > 0 and a non-empty body writes at N
   *   into the existing entry, keeps the larger size and reads the gap as zeros. Any other upload,
   *   including `offset=0` and an empty body at any offset, replaces the whole file.
   * - A replacement takes mode from `mode` (default 0660) and the MIME type from Content-Type
   *   (application/octet-stream counts as none), and keeps the old crtime and inode.
   */
  private upload(request: ParsedRequest, body: Buffer, response: http.ServerResponse): void {
    let fileName: string
    let contentType: string
    let content: Buffer
    if (request.method === 'POST') {
      const part = parseFirstMultipartPart(body, headerValue(request.headers, 'content-type'))
      if (typeof part === 'string') {
        sendJsonError(response, request.query, part === IO_UNEXPECTED_EOF ? 499 : 500, part)
        return
      }
      fileName = part.fileName
      contentType = part.contentType
      content = part.data
    } else {
      fileName = request.path === '/' ? '/' : goPathBase(request.path)
      contentType = headerValue(request.headers, 'content-type')
      content = body
    }
    if (contentType === 'application/octet-stream') {
      contentType = ''
    }

    const targetPath = this.fixFilePath(request.path, fileName)
    const invalid = invalidPathReason(targetPath, false)
    if (invalid !== undefined) {
      sendJsonError(response, request.query, 400, invalid)
      return
    }

    const isAppend = request.query.get('op') === 'append'
    let startOffset = 0
    if (request.query.has('offset')) {
      const offsetText = request.query.get('offset') ?? ''
      if (!/^[+-]?\d+$/.test(offsetText) || Number(offsetText) < 0) {
        sendJsonError(response, request.query, 500, `invalid 'offset': '${offsetText}'`)
        return
      }
      startOffset = Number(offsetText)
      if (isAppend && startOffset > 0) {
        sendJsonError(response, request.query, 500, 'cannot set offset when op=append')
        return
      }
    }

    const md5 = createHash('md5').update(content).digest()
    const declaredMd5 = headerValue(request.headers, 'content-md5')
    if (declaredMd5 !== '' && declaredMd5 !== md5.toString('base64') && declaredMd5 !== md5.toString('hex')) {
      // NOTE: recent filers respond 400 here, while older ones responded 500 with another text.
      sendJsonError(response, request.query, 400, 'The Content-MD5 you specified did not match what we received.')
      return
    }

    const maxMBText = request.query.get('maxMB') ?? ''
    const maxMB = /^\d+$/.test(maxMBText) && Number(maxMBText) > 0 ? Number(maxMBText) : this.defaultMaxMB
    const chunks = this.store.makeChunks(content, startOffset, maxMB * 1024 * 1024)
    const isOffsetWrite = chunks.length > 0 && startOffset > 0

    let entry: FakeEntry
    const existing = isAppend || isOffsetWrite ? this.store.find(targetPath) : undefined
    if (existing !== undefined) {
      if (existing.isDirectory) {
        sendJsonError(response, request.query, 500, `update entry ${targetPath}: existing ${targetPath} is a directory`)
        return
      }
      entry = { ...existing, chunks: [...existing.chunks], extended: existing.extended === null ? null : new Map(existing.extended) }
      entry.mtimeMs = wholeSecondsNowMs()
      entry.md5 = null
      if (isAppend) {
        for (const chunk of chunks) {
          chunk.offset += entry.fileSizeBytes
        }
        writeAt(entry, entry.fileSizeBytes, content)
        entry.fileSizeBytes += content.length
      } else {
        writeAt(entry, startOffset, content)
      }
      entry.chunks.push(...chunks)
    } else {
      entry = this.store.newEntry(targetPath, false, parseModeParameter(request.query))
      entry.mime = contentType
      entry.md5 = md5
      entry.fileSizeBytes = startOffset + content.length
      entry.chunks = chunks
      if (startOffset === 0) {
        entry.data = Buffer.from(content)
      } else {
        writeAt(entry, startOffset, content)
      }
    }

    if (isOffsetWrite) {
      entry.md5 = null
      entry.fileSizeBytes = Math.max(chunksExtent(entry.chunks), entry.fileSizeBytes)
    }

    this.saveRequestHeaders(request.headers, entry)

    try {
      this.store.createEntry(entry)
    } catch (error) {
      this.sendWriteError(request, response, error)
      return
    }

    response.setHeader('Content-MD5', md5.toString('base64'))
    const reply: Record<string, unknown> = {}
    if (fileName !== '') {
      reply.name = fileName
    }
    if (entry.fileSizeBytes !== 0) {
      reply.size = entry.fileSizeBytes
    }
    sendJson(response, request.query, 201, reply)
  }

  /** Appends the file name when the request path ends in "/" or is a directory, as the filer's fixFilePath. */
  private fixFilePath(requestPath: string, fileName: string): string {
    if (requestPath.endsWith('/')) {
      return fileName !== '' ? requestPath + fileName : requestPath
    }
    if (fileName !== '' && this.store.find(requestPath)?.isDirectory === true) {
      return `${requestPath === '/' ? '' : requestPath}/${fileName}`
    }
    return requestPath
  }

  /** Keeps Seaweed-*, Cache-Control, Expires and Content-Disposition request headers as extended attributes. */
  private saveRequestHeaders(headers: http.IncomingHttpHeaders, entry: FakeEntry): void {
    const extended = entry.extended ?? new Map<string, Buffer>()
    for (const [lowerName, rawValue] of Object.entries(headers)) {
      const value = Array.isArray(rawValue) ? (rawValue[0] ?? '') : (rawValue ?? '')
      if (value === '') {
        continue
      }
      // Go canonicalises header names: "seaweed-foo-bar" becomes "Seaweed-Foo-Bar".
      const name = lowerName.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase())
      if (name.startsWith('Seaweed-') || name === 'Cache-Control' || name === 'Expires' || name === 'Content-Disposition') {
        extended.set(name, Buffer.from(value, 'latin1'))
      }
      if (name === 'Response-Content-Disposition') {
        extended.set('Content-Disposition', Buffer.from(value, 'latin1'))
      }
    }
    entry.extended = extended
  }

  /**
   * Renames as the filer's move handler: `mv.from` names the source, the request path the
   * destination, and a destination ending in "/" keeps the source's name inside that directory.
   * Every failure is 400 with a JSON error, and success is 204.
   */
  private move(request: ParsedRequest, response: http.ServerResponse): void {
    const source = clearName(request.query.get('mv.from') ?? '')
    const destination = clearName(request.path)
    if (source === undefined || destination === undefined) {
      sendJsonError(response, request.query, 400, 'invalid argument')
      return
    }

    const sourcePath = source.replace(/\/+$/, '')
    if (sourcePath === '') {
      sendJsonError(response, request.query, 400, "invalid source '/'")
      return
    }

    const invalid = invalidPathReason(sourcePath, false) ?? invalidPathReason(destination, true)
    if (invalid !== undefined) {
      sendJsonError(response, request.query, 400, invalid)
      return
    }

    const sourceEntry = this.store.find(sourcePath)
    if (sourceEntry === undefined) {
      sendJsonError(response, request.query, 400, `failed to get src entry '${sourcePath}', err: ${NOT_FOUND_MESSAGE}`)
      return
    }

    const oldDirectory = parentOf(sourcePath)
    const oldName = nameOf(sourcePath)
    const destinationIsDirectory = destination.endsWith('/')
    const destinationTrimmed = destinationIsDirectory && destination.length > 1 ? destination.slice(0, -1) : destination
    const newDirectory = destinationIsDirectory ? destinationTrimmed : parentOf(destination)
    const newName = destinationIsDirectory ? oldName : nameOf(destination)

    const destinationEntry = this.store.find(destinationTrimmed)
    if (destinationEntry !== undefined && !destinationEntry.isDirectory && sourceEntry.isDirectory) {
      sendJsonError(response, request.query, 400, `move: cannot overwrite non-directory '${destination}' with directory '${sourcePath}'`)
      return
    }

    try {
      this.store.rename(oldDirectory, oldName, newDirectory, newName)
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      sendJsonError(response, request.query, 400, `failed to move entry from '${sourcePath}' to '${destination}', err: ${message}`)
      return
    }
    sendEmpty(response, 204)
  }
}

/** Starts a fake filer on 127.0.0.1 with a free port. */
export async function startFakeFiler(options: FakeFilerOptions = {}): Promise<FakeFiler> {
  const filer = new FakeFilerServer(options)
  await filer.listen()
  return filer
}
