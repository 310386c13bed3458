// The persistent identity of the objects of an OpenDAL volume. Object stores have no inodes, so
// each path gets a file id from a counter, and the id moves with the object on rename. Mode and
// times live here too, because most object stores keep neither.
//
// Storage: one line of JSON per change, appended to `<stateDir>/ids.log` with a synchronous write
// so that the order on disk is the order of the changes. open() replays the log and rewrites it
// compacted. File ids are never reused: the counter is stored in the log's first line.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export type ObjectType = 'file' | 'dir'

/** The stored identity, mode and times of one object (everything except its content). */
export interface ObjectRecord {
  fileId: number
  generation: number
  type: ObjectType
  mode: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
}

type LogLine =
  | { next: number }
  | { set: string; record: ObjectRecord }
  | { del: string }
  | { move: string; to: string }

/** File id of the volume root; ids of other objects start above it. */
export const ROOT_FILE_ID = 1

export class IdMap {
  private readonly byPath = new Map<string, ObjectRecord>()
  private readonly pathById = new Map<number, string>()
  private nextFileId = ROOT_FILE_ID + 1
  private fd: number | null = null
  private readonly logPath: string

  constructor(stateDir: string) {
    this.logPath = join(stateDir, 'ids.log')
  }

  /** Replays the log, writes it back compacted and keeps it open for appending. */
  open(): void {
    if (existsSync(this.logPath)) {
      for (const line of readFileSync(this.logPath, 'utf8').split('\n')) {
        // A line cut short by a crash is the last one and is dropped.
        if (line === '') continue
        let parsed: LogLine
        try {
          parsed = JSON.parse(line) as LogLine
        } catch {
          continue
        }
        this.apply(parsed)
      }
    }

    const compactedPath = `${this.logPath}.compacting`
    const fd = openSync(compactedPath, 'w', 0o600)
    writeSync(fd, JSON.stringify({ next: this.nextFileId }) + '\n')
    for (const [path, record] of this.byPath) writeSync(fd, JSON.stringify({ set: path, record }) + '\n')
    closeSync(fd)
    renameSync(compactedPath, this.logPath)
    this.fd = openSync(this.logPath, 'a', 0o600)
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
  }

  get(path: string): ObjectRecord | undefined {
    return this.byPath.get(path)
  }

  /** Returns the current path of a file id, or null when no object has it. */
  pathOf(fileId: number): string | null {
    return this.pathById.get(fileId) ?? null
  }

  /** Records a new object at `path` with a fresh file id, replacing any record there. */
  add(path: string, type: ObjectType, mode: number, nowMs = Date.now()): ObjectRecord {
    const fileId = this.nextFileId
    this.record({ next: fileId + 1 })
    const record: ObjectRecord = { fileId, generation: Math.floor(nowMs / 1000), type, mode, atimeMs: nowMs, mtimeMs: nowMs, ctimeMs: nowMs }
    this.record({ set: path, record })
    return record
  }

  /** Stores changed fields of the record at `path`. */
  update(path: string, record: ObjectRecord): void {
    this.record({ set: path, record: { ...record } })
  }

  /** Forgets `path` and, for a directory, every path below it. */
  remove(path: string): void {
    this.record({ del: path })
  }

  /** Moves the record at `from` (and everything below it) to `to`, replacing what was there. */
  move(from: string, to: string): void {
    this.record({ move: from, to })
  }

  private record(line: LogLine): void {
    this.apply(line)
    // NOTE: appends are not fsynced, so a power loss (not a process crash) can lose the last
    // changes, and the log grows until the next open compacts it.
    if (this.fd !== null) writeSync(this.fd, JSON.stringify(line) + '\n')
  }

  private apply(line: LogLine): void {
    if ('next' in line) {
      this.nextFileId = Math.max(this.nextFileId, line.next)
    } else if ('set' in line) {
      this.deleteOne(line.set)
      this.byPath.set(line.set, line.record)
      this.pathById.set(line.record.fileId, line.set)
      this.nextFileId = Math.max(this.nextFileId, line.record.fileId + 1)
    } else if ('del' in line) {
      for (const path of this.pathsBelow(line.del)) this.deleteOne(path)
    } else {
      for (const path of this.pathsBelow(line.to)) this.deleteOne(path)
      for (const path of this.pathsBelow(line.move)) {
        const record = this.byPath.get(path)!
        this.deleteOne(path)
        const moved = line.to + path.slice(line.move.length)
        this.byPath.set(moved, record)
        this.pathById.set(record.fileId, moved)
      }
    }
  }

  private deleteOne(path: string): void {
    const record = this.byPath.get(path)
    if (record === undefined) return
    this.byPath.delete(path)
    if (this.pathById.get(record.fileId) === path) this.pathById.delete(record.fileId)
  }

  /** Returns `path` and every recorded path below it. */
  private pathsBelow(path: string): string[] {
    const prefix = `${path}/`
    const found: string[] = []
    for (const candidate of this.byPath.keys()) {
      if (candidate === path || candidate.startsWith(prefix)) found.push(candidate)
    }
    return found
  }
}

/**
 * Creates the state directory and its staging directory when missing, readable by the node's user
 * only, because staged files hold volume data.
 */
export function prepareStateDir(stateDir: string): string {
  const stagingDir = join(stateDir, 'staging')
  mkdirSync(stagingDir, { recursive: true, mode: 0o700 })
  return stagingDir
}
