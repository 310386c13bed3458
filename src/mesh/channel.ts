// The SEAL request protocol: many requests in flight on one long-lived libp2p stream per peer.
//
// A frame is a 9-byte header (payload length u32, kind u8, request id u32) and its payload.
// A REQUEST carries the signed envelope and the length of the data that follows it. DATA frames
// carry that data, or a response's, in chunks, so that a large read or write does not hold up the
// requests behind it. Each frame waits for the stream to drain (backpressure). A RESPONSE
// carries the CBOR result and the length of its data. CANCEL informs the owner that the caller
// gave up on a request.

import type { Stream } from '@libp2p/interface'
import { decode, encode } from 'cbor-x'

export const SEAL_PROTOCOL = '/aegis/seal/1.0.0'

export const enum FrameKind {
  Request = 1,
  Data = 2,
  Response = 3,
  Cancel = 4
}

const HEADER_BYTES = 9
/** Largest DATA chunk; smaller chunks let other requests' frames interleave. */
export const CHUNK_BYTES = 256 * 1024
/** Frames up to this size are copied into one buffer and sent at once. */
const COALESCE_BYTES = 64 * 1024
/** Largest payload of any frame: a chunk, or an envelope or result with its length prefix. */
const MAX_FRAME_PAYLOAD_BYTES = 1024 * 1024
/** Largest data of one request or response: an NFS READ or WRITE is at most 4 MiB. */
export const MAX_DATA_BYTES = 4 * 1024 * 1024

/** Thrown when the peer breaks the framing; the stream is closed, since nothing after it can be trusted. */
export class ProtocolError extends Error {
  override name = 'ProtocolError'
}

export interface Frame {
  kind: FrameKind
  id: number
  payload: Buffer
}

/** Splits received bytes into frames, whatever the chunking of the stream. */
export class FrameParser {
  private chunks: Buffer[] = []
  private buffered = 0

  constructor(private readonly onFrame: (frame: Frame) => void) {}

  push(bytes: Uint8Array): void {
    this.chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    this.buffered += bytes.byteLength
    while (this.buffered >= HEADER_BYTES) {
      const header = this.peek(HEADER_BYTES)
      const length = header.readUInt32BE(0)
      if (length > MAX_FRAME_PAYLOAD_BYTES) throw new ProtocolError(`frame of ${length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD_BYTES}`)
      if (this.buffered < HEADER_BYTES + length) return
      const kind = header[4] as FrameKind
      const id = header.readUInt32BE(5)
      this.take(HEADER_BYTES)
      this.onFrame({ kind, id, payload: this.take(length) })
    }
  }

  /** Returns the first `length` buffered bytes without consuming them. */
  private peek(length: number): Buffer {
    if (this.chunks[0].length >= length) return this.chunks[0]
    const joined = Buffer.concat(this.chunks)
    this.chunks = [joined]
    return joined
  }

  /** Removes and returns the first `length` buffered bytes, copying only when they span chunks. */
  private take(length: number): Buffer {
    // A frame with no payload (CANCEL) often arrives alone, leaving no chunk to cut from.
    if (length === 0) return Buffer.alloc(0)
    this.buffered -= length
    const first = this.chunks[0]
    if (first.length > length) {
      this.chunks[0] = first.subarray(length)
      return first.subarray(0, length)
    }
    if (first.length === length) {
      this.chunks.shift()
      return first
    }
    const result = Buffer.allocUnsafe(length)
    let filled = 0
    while (filled < length) {
      const chunk = this.chunks[0]
      const part = Math.min(chunk.length, length - filled)
      chunk.copy(result, filled, 0, part)
      filled += part
      if (part === chunk.length) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(part)
    }
    return result
  }
}

/** Builds one frame header. */
function header(kind: FrameKind, id: number, payloadLength: number): Buffer {
  const bytes = Buffer.allocUnsafe(HEADER_BYTES)
  bytes.writeUInt32BE(payloadLength, 0)
  bytes[4] = kind
  bytes.writeUInt32BE(id, 5)
  return bytes
}

/** Prefixes `body` with the length of the data that follows the frame. */
function withDataLength(dataLength: number, body: Uint8Array): Buffer {
  const prefix = Buffer.allocUnsafe(4)
  prefix.writeUInt32BE(dataLength, 0)
  return Buffer.concat([prefix, body])
}

/** Reads the data length prefix of a REQUEST or RESPONSE payload. */
export function splitDataLength(payload: Buffer): { dataLength: number; body: Buffer } {
  if (payload.length < 4) throw new ProtocolError('frame payload lacks its data length')
  const dataLength = payload.readUInt32BE(0)
  if (dataLength > MAX_DATA_BYTES) throw new ProtocolError(`data of ${dataLength} bytes exceeds the limit of ${MAX_DATA_BYTES}`)
  return { dataLength, body: payload.subarray(4) }
}

/**
 * Writes frames to a stream in order, waiting for it to drain whenever its buffer is full, so a
 * fast sender cannot grow memory without bound.
 */
export class FrameWriter {
  private tail: Promise<void> = Promise.resolve()

  constructor(private readonly stream: Stream) {}

  /**
   * Queues frames, each a kind, an id and payload parts; resolves once the stream accepted them.
   * Small frames go out as one buffer: each send becomes its own encrypted Noise message and
   * socket writes, so a header sent apart from its payload costs as much as the payload.
   */
  private write(frames: ReadonlyArray<{ kind: FrameKind; id: number; parts: readonly Uint8Array[] }>): Promise<void> {
    const buffers: Uint8Array[] = []
    for (const { kind, id, parts } of frames) {
      buffers.push(header(kind, id, parts.reduce((sum, part) => sum + part.byteLength, 0)))
      for (const part of parts) if (part.byteLength > 0) buffers.push(part)
    }
    const total = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0)
    const run = async (): Promise<void> => {
      if (this.stream.writableNeedsDrain) await this.stream.onDrain()
      if (total <= COALESCE_BYTES) this.stream.send(Buffer.concat(buffers, total))
      else for (const buffer of buffers) this.stream.send(buffer)
    }
    const result = this.tail.then(run)
    this.tail = result.catch(() => {})
    return result
  }

  /** Sends a message (REQUEST or RESPONSE) and then its data in chunks. */
  async message(kind: FrameKind.Request | FrameKind.Response, id: number, body: Uint8Array, data: Uint8Array | null): Promise<void> {
    const dataLength = data === null ? 0 : data.byteLength
    const first = { kind, id, parts: [withDataLength(dataLength, body)] }
    if (data === null || dataLength === 0) return this.write([first])
    // Data that fits one small buffer travels with its message, in the same send.
    if (dataLength <= COALESCE_BYTES) return this.write([first, { kind: FrameKind.Data, id, parts: [data] }])
    await this.write([first])
    // Each chunk is queued only once the previous one was sent, so the frames of other requests
    // queued meanwhile go out between them.
    for (let offset = 0; offset < dataLength; offset += CHUNK_BYTES) {
      await this.write([{ kind: FrameKind.Data, id, parts: [data.subarray(offset, Math.min(dataLength, offset + CHUNK_BYTES))] }])
    }
  }

  cancel(id: number): Promise<void> {
    return this.write([{ kind: FrameKind.Cancel, id, parts: [] }])
  }
}

/** Collects the DATA frames of one message until `length` bytes have arrived. */
export class DataAssembly {
  readonly data: Buffer
  private filled = 0

  constructor(readonly length: number) {
    this.data = Buffer.allocUnsafe(length)
  }

  /** Adds a chunk; returns true once the data is complete. */
  add(chunk: Buffer): boolean {
    if (this.filled + chunk.length > this.length) throw new ProtocolError(`more data than the ${this.length} bytes announced`)
    chunk.copy(this.data, this.filled)
    this.filled += chunk.length
    return this.filled === this.length
  }
}

/** A reply: either a result or the error taxonomy code with a message. */
export type Reply =
  | { ok: true; result: unknown }
  /** `rejected` is the envelope check that failed, when the envelope was refused. */
  | { ok: false; code: string; message: string; rejected?: string }

export function encodeReply(reply: Reply): Uint8Array {
  return encode(reply)
}

export function decodeReply(body: Buffer): Reply {
  let value: unknown
  try {
    value = decode(body)
  } catch (error) {
    throw new ProtocolError(`reply is not valid CBOR: ${(error as Error).message}`)
  }
  const reply = value as Partial<Reply> | null
  if (reply === null || typeof reply !== 'object' || typeof reply.ok !== 'boolean') throw new ProtocolError('reply is not a map with "ok"')
  if (!reply.ok && (typeof (reply as { code?: unknown }).code !== 'string' || typeof (reply as { message?: unknown }).message !== 'string')) {
    throw new ProtocolError('error reply lacks its code or message')
  }
  return reply as Reply
}

/** Feeds every chunk a stream receives to `parser`; a framing error aborts the stream. */
export function readFrames(stream: Stream, parser: FrameParser, onError: (error: Error) => void): void {
  stream.addEventListener('message', (event) => {
    try {
      const data = event.data
      if (data instanceof Uint8Array) parser.push(data)
      else for (const chunk of data) parser.push(chunk)
    } catch (error) {
      onError(error as Error)
      stream.abort(error as Error)
    }
  })
}
