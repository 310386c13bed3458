// Reusable buffers for READ replies.
//
// A fresh 1 MiB Buffer costs a large allocation and a page fault for every 4 KiB page the read
// fills; reusing buffers once the socket has sent them avoids both.

export class BufferPool {
  private readonly free: Buffer[] = []

  constructor(
    readonly bufferBytes: number,
    private readonly maxFree: number
  ) {}

  /** Returns a buffer of at least `bytes` bytes; small requests get an ordinary allocation. */
  acquire(bytes: number): Buffer {
    if (bytes > this.bufferBytes || bytes < this.bufferBytes / 4) return Buffer.allocUnsafe(bytes)
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes)
  }

  /** Gives a buffer back once nothing reads it any more. */
  release(buffer: Buffer): void {
    if (buffer.length === this.bufferBytes && this.free.length < this.maxFree) this.free.push(buffer)
  }
}
