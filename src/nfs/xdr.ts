// XDR (RFC 4506) reading and writing over Node Buffers.
//
// The reader never copies: opaque and string values are returned as subarrays of the record that
// holds them, so a caller that keeps one past the request must copy it. The writer grows one
// Buffer and leaves its first four bytes free for the RPC record mark.

/** Thrown when a value cannot be decoded: the record ends early or a length is over its bound. */
export class XdrError extends Error {
  override name = 'XdrError'
}

const TWO_POW_32 = 0x1_0000_0000

export class XdrReader {
  constructor(
    readonly buffer: Buffer,
    public offset: number,
    readonly end: number = buffer.length
  ) {}

  get remaining(): number {
    return this.end - this.offset
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.end) {
      throw new XdrError(`record ends after ${this.end} bytes, ${bytes} more were expected at offset ${this.offset}`)
    }
  }

  u32(): number {
    this.need(4)
    const value = this.buffer.readUInt32BE(this.offset)
    this.offset += 4
    return value
  }

  i32(): number {
    this.need(4)
    const value = this.buffer.readInt32BE(this.offset)
    this.offset += 4
    return value
  }

  bool(): boolean {
    const value = this.u32()
    if (value > 1) throw new XdrError(`boolean has value ${value}`)
    return value === 1
  }

  /** Reads an unsigned 64-bit integer that must fit in a double without loss (offsets, sizes). */
  u64(): number {
    const high = this.u32()
    const low = this.u32()
    if (high >= 0x20_0000) throw new XdrError(`64-bit value ${BigInt(high) * 2n ** 32n + BigInt(low)} is above 2^53`)
    return high * TWO_POW_32 + low
  }

  /** Reads an unsigned 64-bit integer of any size. */
  u64big(): bigint {
    const high = this.u32()
    const low = this.u32()
    return (BigInt(high) << 32n) | BigInt(low)
  }

  /** Reads fixed-length opaque data and its padding; returns a view into the record. */
  fixed(length: number): Buffer {
    const padded = (length + 3) & ~3
    this.need(padded)
    const value = this.buffer.subarray(this.offset, this.offset + length)
    this.offset += padded
    return value
  }

  /** Reads variable-length opaque data of at most maxLength bytes; returns a view into the record. */
  opaque(maxLength: number): Buffer {
    const length = this.u32()
    if (length > maxLength) throw new XdrError(`opaque length ${length} is above its bound ${maxLength}`)
    return this.fixed(length)
  }

  skip(bytes: number): void {
    this.need(bytes)
    this.offset += bytes
  }
}

export class XdrWriter {
  buffer: Buffer
  offset: number

  constructor(initialBytes = 512, reservedBytes = 4) {
    this.buffer = Buffer.allocUnsafe(initialBytes)
    this.offset = reservedBytes
  }

  /** Makes room for `bytes` more bytes at once, to avoid growing step by step. */
  reserve(bytes: number): void {
    this.ensure(bytes)
  }

  /**
   * Moves what was written so far into `buffer` and goes on writing there. The caller owns
   * `buffer` (a pooled one, say) and must not reuse it while the bytes are in use.
   */
  adopt(buffer: Buffer): void {
    this.buffer.copy(buffer, 0, 0, this.offset)
    this.buffer = buffer
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return
    let size = this.buffer.length * 2
    while (size < this.offset + bytes) size *= 2
    const grown = Buffer.allocUnsafe(size)
    this.buffer.copy(grown, 0, 0, this.offset)
    this.buffer = grown
  }

  u32(value: number): void {
    this.ensure(4)
    const buffer = this.buffer
    const offset = this.offset
    buffer[offset] = value >>> 24
    buffer[offset + 1] = value >>> 16
    buffer[offset + 2] = value >>> 8
    buffer[offset + 3] = value
    this.offset = offset + 4
  }

  i32(value: number): void {
    this.ensure(4)
    this.buffer.writeInt32BE(value, this.offset)
    this.offset += 4
  }

  bool(value: boolean): void {
    this.u32(value ? 1 : 0)
  }

  /** Writes a non-negative integer below 2^53 as an unsigned 64-bit value. */
  u64(value: number): void {
    this.ensure(8)
    const high = Math.floor(value / TWO_POW_32)
    const low = value - high * TWO_POW_32
    const buffer = this.buffer
    const offset = this.offset
    buffer[offset] = high >>> 24
    buffer[offset + 1] = high >>> 16
    buffer[offset + 2] = high >>> 8
    buffer[offset + 3] = high
    buffer[offset + 4] = low >>> 24
    buffer[offset + 5] = low >>> 16
    buffer[offset + 6] = low >>> 8
    buffer[offset + 7] = low
    this.offset = offset + 8
  }

  u64big(value: bigint): void {
    this.ensure(8)
    this.buffer.writeBigUInt64BE(value, this.offset)
    this.offset += 8
  }

  /** Writes fixed-length opaque data followed by zero padding to a multiple of four bytes. */
  fixed(data: Uint8Array): void {
    const length = data.length
    const padded = (length + 3) & ~3
    this.ensure(padded)
    const buffer = this.buffer
    const offset = this.offset
    // A byte loop beats TypedArray.set for the short values (handles, verifiers) written most.
    if (length <= 64) {
      for (let i = 0; i < length; i++) buffer[offset + i] = data[i]
    } else {
      buffer.set(data, offset)
    }
    for (let i = offset + length; i < offset + padded; i++) buffer[i] = 0
    this.offset = offset + padded
  }

  opaque(data: Uint8Array): void {
    this.u32(data.length)
    this.fixed(data)
  }

  string(value: string): void {
    const length = Buffer.byteLength(value)
    this.u32(length)
    const padded = (length + 3) & ~3
    this.ensure(padded)
    this.buffer.write(value, this.offset, 'utf8')
    for (let i = this.offset + length; i < this.offset + padded; i++) this.buffer[i] = 0
    this.offset += padded
  }

  /** Returns the bytes written so far, including the reserved prefix. */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.offset)
  }
}
