// Local staging of writes for an OpenDAL volume. Object stores cannot write at an offset, so the
// writes to a file go to a sparse local file named after its file id in `<stateDir>/staging/`,
// and the whole file is uploaded later (see OpenDalProvider.upload). A staging file left behind by
// a crash is found by listStaged() at the next open.

import { open, readdir, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'

/** The staged content of one file; its operations must be serialized by the caller. */
export class StagedFile {
  /** Change counter, bumped by every change, so that an upload can tell whether it sent the latest content. */
  version = 0
  /** The version the backend holds; equal to `version` when nothing waits for upload. */
  uploadedVersion = 0
  idleTimer: NodeJS.Timeout | null = null

  constructor(
    readonly fileId: number,
    readonly localPath: string,
    private readonly handle: FileHandle,
    public sizeBytes: number
  ) {}

  get dirty(): boolean {
    return this.version !== this.uploadedVersion
  }

  async writeAt(offset: number, data: Buffer): Promise<void> {
    let written = 0
    while (written < data.length) {
      const { bytesWritten } = await this.handle.write(data, written, data.length - written, offset + written)
      written += bytesWritten
    }
    this.sizeBytes = Math.max(this.sizeBytes, offset + data.length)
    this.version++
  }

  /** Reads up to `length` bytes at `offset`; short only at the staged end of file. */
  async readAt(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.sizeBytes)
    if (end <= offset) return Buffer.alloc(0)
    const data = Buffer.alloc(end - offset)
    let filled = 0
    while (filled < data.length) {
      const { bytesRead } = await this.handle.read(data, filled, data.length - filled, offset + filled)
      // The local file is shorter than the staged size only after a truncate that extended it,
      // which reads as zeros.
      if (bytesRead === 0) break
      filled += bytesRead
    }
    return data
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.handle.truncate(sizeBytes)
    this.sizeBytes = sizeBytes
    this.version++
  }

  async sync(): Promise<void> {
    await this.handle.sync()
  }

  async close(): Promise<void> {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    this.idleTimer = null
    await this.handle.close()
  }

  /** Closes the staging file and deletes it. */
  async discard(): Promise<void> {
    await this.close()
    await rm(this.localPath, { force: true })
  }
}

/** Opens (creating it when missing) the staging file of `fileId`; its size is what it holds. */
export async function openStaged(stagingDir: string, fileId: number): Promise<StagedFile> {
  const localPath = join(stagingDir, String(fileId))
  const handle = await open(localPath, 'a+', 0o600).then(async (probe) => {
    // 'a+' creates without truncating; reopen read-write so that writes go to their offsets
    // instead of the end (O_APPEND ignores the position on Linux).
    await probe.close()
    return open(localPath, 'r+')
  })
  const { size } = await handle.stat()
  return new StagedFile(fileId, localPath, handle, size)
}

/** Returns the file ids that have a staging file in `stagingDir`. */
export async function listStaged(stagingDir: string): Promise<number[]> {
  const ids: number[] = []
  for (const name of await readdir(stagingDir)) {
    if (/^\d+$/.test(name)) ids.push(Number(name))
  }
  return ids
}
