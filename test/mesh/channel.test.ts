// SEAL framing: FrameParser against every way the stream may cut the bytes, the length checks,
// reply decoding, and FrameWriter's order and backpressure on a fake stream.
//
// The tests build and split frames by hand from the layout in channel.ts (payload length u32,
// kind u8, request id u32, all big-endian, then the payload) instead of using the code under test.

import type { Stream } from '@libp2p/interface'
import { encode } from 'cbor-x'
import { describe, expect, it } from 'vitest'

import {
  CHUNK_BYTES,
  DataAssembly,
  decodeReply,
  encodeReply,
  FrameKind,
  FrameParser,
  FrameWriter,
  MAX_DATA_BYTES,
  ProtocolError,
  splitDataLength,
  type Frame
} from '../../src/mesh/channel.js'

const HEADER_BYTES = 9
/** MAX_FRAME_PAYLOAD_BYTES of channel.ts, which the module does not export. */
const MAX_FRAME_PAYLOAD_BYTES = 1024 * 1024

function encodeFrame(kind: number, id: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt32BE(payload.byteLength, 0)
  header[4] = kind
  header.writeUInt32BE(id, 5)
  return Buffer.concat([header, payload])
}

interface PlainFrame {
  kind: number
  id: number
  payload: Buffer
}

/** Splits bytes into frames. The bytes must end on a frame boundary. */
function decodeFrames(bytes: Buffer): PlainFrame[] {
  const frames: PlainFrame[] = []
  let offset = 0
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_BYTES) throw new Error(`${bytes.length - offset} bytes left over after ${frames.length} frames`)
    const length = bytes.readUInt32BE(offset)
    const end = offset + HEADER_BYTES + length
    if (end > bytes.length) throw new Error(`frame ${frames.length} is cut off`)
    frames.push({ kind: bytes[offset + 4], id: bytes.readUInt32BE(offset + 5), payload: bytes.subarray(offset + HEADER_BYTES, end) })
    offset = end
  }
  return frames
}

/** Bytes whose value depends on the position, so a misplaced or repeated slice shows up. */
function patterned(length: number, seed = 0): Buffer {
  const bytes = Buffer.alloc(length)
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed + (i >> 8)) & 0xff
  return bytes
}

function parserFrames(): { parser: FrameParser; frames: Frame[] } {
  const frames: Frame[] = []
  return { parser: new FrameParser((frame) => frames.push(frame)), frames }
}

/** Copies frames into plain values, so that tests compare kinds, ids and payload bytes. */
function plain(frames: Frame[]): PlainFrame[] {
  return frames.map((frame) => ({ kind: frame.kind, id: frame.id, payload: Buffer.from(frame.payload) }))
}

describe('FrameParser', () => {
  const sample: PlainFrame[] = [
    { kind: FrameKind.Request, id: 1, payload: patterned(40, 1) },
    { kind: FrameKind.Data, id: 1, payload: patterned(300, 2) },
    { kind: FrameKind.Response, id: 0xffff_ffff, payload: patterned(1, 3) },
    { kind: FrameKind.Data, id: 7, payload: patterned(17, 4) }
  ]
  const sampleBytes = Buffer.concat(sample.map((frame) => encodeFrame(frame.kind, frame.id, frame.payload)))

  it('splits at every byte boundary', () => {
    for (let cut = 0; cut <= sampleBytes.length; cut++) {
      const { parser, frames } = parserFrames()
      parser.push(sampleBytes.subarray(0, cut))
      parser.push(sampleBytes.subarray(cut))
      expect(plain(frames), `cut at byte ${cut}`).toEqual(sample)
    }
  })

  it('splits at every pair of boundaries', () => {
    for (let first = 0; first <= sampleBytes.length; first += 7) {
      for (let second = first; second <= sampleBytes.length; second += 9) {
        const { parser, frames } = parserFrames()
        parser.push(sampleBytes.subarray(0, first))
        parser.push(sampleBytes.subarray(first, second))
        parser.push(sampleBytes.subarray(second))
        expect(plain(frames), `cuts at bytes ${first} and ${second}`).toEqual(sample)
      }
    }
  })

  it('reads one byte at a time', () => {
    const { parser, frames } = parserFrames()
    const deliveredAfter: number[] = []
    for (let i = 0; i < sampleBytes.length; i++) {
      parser.push(sampleBytes.subarray(i, i + 1))
      if (frames.length > deliveredAfter.length) deliveredAfter.push(i + 1)
    }
    expect(plain(frames)).toEqual(sample)

    // Each frame is delivered on its last byte, not earlier and not later.
    let end = 0
    const frameEnds = sample.map((frame) => (end += HEADER_BYTES + frame.payload.length))
    expect(deliveredAfter).toEqual(frameEnds)
  })

  it('reads many frames from one chunk', () => {
    const many = Array.from({ length: 200 }, (_, index) => ({ kind: FrameKind.Data, id: index, payload: patterned(index % 23, index) }))
    const { parser, frames } = parserFrames()
    parser.push(Buffer.concat(many.map((frame) => encodeFrame(frame.kind, frame.id, frame.payload))))
    expect(plain(frames)).toEqual(many)
  })

  it('reads a chunk at an offset', () => {
    // Stream chunks are often views into a larger buffer.
    const backing = Buffer.concat([Buffer.alloc(5, 0xee), sampleBytes, Buffer.alloc(5, 0xee)])
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 5, sampleBytes.length)
    const { parser, frames } = parserFrames()
    parser.push(view)
    expect(plain(frames)).toEqual(sample)
  })

  it('reads a frame at the limit', () => {
    const payload = patterned(MAX_FRAME_PAYLOAD_BYTES, 9)
    const { parser, frames } = parserFrames()
    parser.push(encodeFrame(FrameKind.Data, 3, payload))
    expect(frames).toHaveLength(1)
    expect(frames[0].payload.equals(payload)).toBe(true)
  })

  it('rejects a payload over the limit', () => {
    const { parser, frames } = parserFrames()
    const header = encodeFrame(FrameKind.Data, 3, Buffer.alloc(0))
    header.writeUInt32BE(MAX_FRAME_PAYLOAD_BYTES + 1, 0)

    // The header alone is enough: the parser must not wait for (and buffer) the payload.
    expect(() => parser.push(header)).toThrow(ProtocolError)
    expect(() => parserFrames().parser.push(header)).toThrow(`frame of ${MAX_FRAME_PAYLOAD_BYTES + 1} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD_BYTES}`)
    expect(frames).toHaveLength(0)
  })

  it('rejects a length of 2^32-1', () => {
    const header = Buffer.from([0xff, 0xff, 0xff, 0xff, FrameKind.Data, 0, 0, 0, 1])
    expect(() => parserFrames().parser.push(header)).toThrow(ProtocolError)
  })

  it('rejects an oversized frame after good ones', () => {
    const { parser, frames } = parserFrames()
    const bad = Buffer.alloc(HEADER_BYTES)
    bad.writeUInt32BE(MAX_FRAME_PAYLOAD_BYTES + 1, 0)
    expect(() => parser.push(Buffer.concat([sampleBytes, bad]))).toThrow(ProtocolError)
    expect(plain(frames)).toEqual(sample)
  })

  it('reads a zero-length payload mid-chunk', () => {
    const { parser, frames } = parserFrames()
    parser.push(Buffer.concat([encodeFrame(FrameKind.Cancel, 5, Buffer.alloc(0)), sampleBytes]))
    expect(plain(frames)).toEqual([{ kind: FrameKind.Cancel, id: 5, payload: Buffer.alloc(0) }, ...sample])
  })

  // FrameWriter.cancel sends a CANCEL header alone, so it often arrives as a chunk of its own.
  it('reads a CANCEL frame alone', () => {
    const { parser, frames } = parserFrames()
    parser.push(encodeFrame(FrameKind.Cancel, 5, Buffer.alloc(0)))
    expect(plain(frames)).toEqual([{ kind: FrameKind.Cancel, id: 5, payload: Buffer.alloc(0) }])
  })

  it('reads a zero-length payload ending a chunk', () => {
    const { parser, frames } = parserFrames()
    parser.push(Buffer.concat([sampleBytes, encodeFrame(FrameKind.Cancel, 6, Buffer.alloc(0))]))
    expect(plain(frames)).toEqual([...sample, { kind: FrameKind.Cancel, id: 6, payload: Buffer.alloc(0) }])
  })
})

describe('splitDataLength', () => {
  function payload(dataLength: number, body: Buffer): Buffer {
    const prefix = Buffer.alloc(4)
    prefix.writeUInt32BE(dataLength, 0)
    return Buffer.concat([prefix, body])
  }

  it('reads length and body', () => {
    const body = patterned(33)
    const split = splitDataLength(payload(123_456, body))
    expect(split.dataLength).toBe(123_456)
    expect(split.body.equals(body)).toBe(true)
  })

  it('reads an empty body', () => {
    const split = splitDataLength(payload(0, Buffer.alloc(0)))
    expect(split.dataLength).toBe(0)
    expect(split.body.length).toBe(0)
  })

  it.each([0, 1, 2, 3])('rejects a %i-byte payload', (length) => {
    expect(() => splitDataLength(Buffer.alloc(length))).toThrow(ProtocolError)
    expect(() => splitDataLength(Buffer.alloc(length))).toThrow('frame payload lacks its data length')
  })

  it('accepts MAX_DATA_BYTES', () => {
    expect(splitDataLength(payload(MAX_DATA_BYTES, Buffer.alloc(1))).dataLength).toBe(4 * 1024 * 1024)
  })

  it('rejects more than MAX_DATA_BYTES', () => {
    expect(() => splitDataLength(payload(MAX_DATA_BYTES + 1, Buffer.alloc(1)))).toThrow(ProtocolError)
    expect(() => splitDataLength(payload(MAX_DATA_BYTES + 1, Buffer.alloc(1)))).toThrow(`data of ${MAX_DATA_BYTES + 1} bytes exceeds the limit of ${MAX_DATA_BYTES}`)
    expect(() => splitDataLength(payload(0xffff_ffff, Buffer.alloc(0)))).toThrow(ProtocolError)
  })
})

describe('DataAssembly', () => {
  it('fills exactly in pieces', () => {
    const data = patterned(1000)
    const assembly = new DataAssembly(1000)
    expect(assembly.add(data.subarray(0, 1))).toBe(false)
    expect(assembly.add(data.subarray(1, 600))).toBe(false)
    expect(assembly.add(data.subarray(600, 600))).toBe(false)
    expect(assembly.add(data.subarray(600))).toBe(true)
    expect(assembly.data.equals(data)).toBe(true)
  })

  it('fills in one chunk', () => {
    const data = patterned(CHUNK_BYTES)
    const assembly = new DataAssembly(CHUNK_BYTES)
    expect(assembly.add(data)).toBe(true)
    expect(assembly.data.equals(data)).toBe(true)
  })

  it('keeps its own copy', () => {
    const chunk = patterned(10)
    const assembly = new DataAssembly(10)
    assembly.add(chunk)
    chunk.fill(0)
    expect(assembly.data.equals(patterned(10))).toBe(true)
  })

  it('rejects a chunk past the end', () => {
    const assembly = new DataAssembly(10)
    expect(assembly.add(patterned(6))).toBe(false)
    expect(() => assembly.add(patterned(5))).toThrow(ProtocolError)
    expect(() => assembly.add(patterned(5))).toThrow('more data than the 10 bytes announced')
  })

  it('rejects data after completion', () => {
    const assembly = new DataAssembly(4)
    expect(assembly.add(patterned(4))).toBe(true)
    expect(() => assembly.add(Buffer.from([1]))).toThrow(ProtocolError)
    expect(assembly.data.equals(patterned(4))).toBe(true)
  })
})

describe('decodeReply', () => {
  it('decodes a result', () => {
    const reply = decodeReply(Buffer.from(encodeReply({ ok: true, result: { size: 42, name: 'a' } })))
    expect(reply).toEqual({ ok: true, result: { size: 42, name: 'a' } })
  })

  it('decodes an error', () => {
    const reply = decodeReply(Buffer.from(encodeReply({ ok: false, code: 'AccessDenied', message: 'denied by policy', rejected: 'signature' })))
    expect(reply).toEqual({ ok: false, code: 'AccessDenied', message: 'denied by policy', rejected: 'signature' })
  })

  it.each([
    ['empty input', Buffer.alloc(0)],
    ['break byte', Buffer.from([0xff])],
    ['truncated map', Buffer.from(encode({ ok: true, result: 'x'.repeat(40) })).subarray(0, 10)],
    ['indefinite string', Buffer.from([0x5f])]
  ])('rejects %s as not CBOR', (_, bytes) => {
    expect(() => decodeReply(bytes)).toThrow(ProtocolError)
    expect(() => decodeReply(bytes)).toThrow('reply is not valid CBOR')
  })

  it.each([
    ['a number', 1],
    ['null', null],
    ['a string', 'ok'],
    ['an array', [true]],
    ['a map without ok', { result: 1 }],
    ['ok as a number', { ok: 1, result: 1 }],
    ['ok as a string', { ok: 'true', result: 1 }]
  ])('rejects %s', (_, value) => {
    expect(() => decodeReply(Buffer.from(encode(value)))).toThrow(ProtocolError)
    expect(() => decodeReply(Buffer.from(encode(value)))).toThrow('reply is not a map with "ok"')
  })

  it.each([
    ['no code', { ok: false, message: 'm' }],
    ['no message', { ok: false, code: 'NotFound' }],
    ['a numeric code', { ok: false, code: 2, message: 'm' }],
    ['neither field', { ok: false }]
  ])('rejects an error with %s', (_, value) => {
    expect(() => decodeReply(Buffer.from(encode(value)))).toThrow(ProtocolError)
    expect(() => decodeReply(Buffer.from(encode(value)))).toThrow('error reply lacks its code or message')
  })
})

/**
 * The part of a libp2p Stream that FrameWriter uses. `send` reports a full buffer once
 * `bufferBytes` have been sent since the last drain, and `drain()` empties it as the transport would.
 */
class FakeStream {
  readonly sent: Buffer[] = []
  writableNeedsDrain = false
  /** Frames started while the stream asked the writer to wait. */
  framesStartedWhileFull = 0
  private bufferedBytes = 0
  private drainWaiters: Array<() => void> = []
  private failNextSend = false

  constructor(private readonly bufferBytes = Number.POSITIVE_INFINITY) {}

  send(data: Uint8Array): boolean {
    if (this.failNextSend) {
      this.failNextSend = false
      throw new Error('stream closed')
    }
    // FrameWriter sends a header first and then its payload, so a header-sized send starts a frame.
    if (this.writableNeedsDrain && data.byteLength === HEADER_BYTES) this.framesStartedWhileFull++
    this.sent.push(Buffer.from(data))
    this.bufferedBytes += data.byteLength
    if (this.bufferedBytes >= this.bufferBytes) this.writableNeedsDrain = true
    return !this.writableNeedsDrain
  }

  onDrain(): Promise<void> {
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  get waitingForDrain(): number {
    return this.drainWaiters.length
  }

  drain(): void {
    this.bufferedBytes = 0
    this.writableNeedsDrain = false
    for (const resolve of this.drainWaiters.splice(0)) resolve()
  }

  failNext(): void {
    this.failNextSend = true
  }

  frames(): PlainFrame[] {
    return decodeFrames(Buffer.concat(this.sent))
  }

  asStream(): Stream {
    return this as unknown as Stream
  }
}

/** Lets queued promise callbacks and timers run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 5))
}

function dataLengthOf(frame: PlainFrame): number {
  return frame.payload.readUInt32BE(0)
}

describe('FrameWriter', () => {
  it('sends a message without data', async () => {
    const stream = new FakeStream()
    const body = patterned(50)
    await new FrameWriter(stream.asStream()).message(FrameKind.Request, 9, body, null)

    const frames = stream.frames()
    expect(frames).toHaveLength(1)
    expect(frames[0].kind).toBe(FrameKind.Request)
    expect(frames[0].id).toBe(9)
    expect(dataLengthOf(frames[0])).toBe(0)
    expect(frames[0].payload.subarray(4).equals(body)).toBe(true)
  })

  it('sends no DATA frame for empty data', async () => {
    const stream = new FakeStream()
    await new FrameWriter(stream.asStream()).message(FrameKind.Response, 4, patterned(3), Buffer.alloc(0))
    const frames = stream.frames()
    expect(frames.map((frame) => frame.kind)).toEqual([FrameKind.Response])
    expect(dataLengthOf(frames[0])).toBe(0)
  })

  it('splits data into CHUNK_BYTES chunks', async () => {
    const stream = new FakeStream()
    const data = patterned(2 * CHUNK_BYTES + 1000, 5)
    await new FrameWriter(stream.asStream()).message(FrameKind.Request, 3, patterned(20), data)

    const frames = stream.frames()
    expect(frames.map((frame) => [frame.kind, frame.id, frame.payload.length])).toEqual([
      [FrameKind.Request, 3, 24],
      [FrameKind.Data, 3, CHUNK_BYTES],
      [FrameKind.Data, 3, CHUNK_BYTES],
      [FrameKind.Data, 3, 1000]
    ])
    expect(dataLengthOf(frames[0])).toBe(data.length)
    expect(Buffer.concat(frames.slice(1).map((frame) => frame.payload)).equals(data)).toBe(true)
  })

  it('sends no empty chunk at an exact multiple', async () => {
    const stream = new FakeStream()
    await new FrameWriter(stream.asStream()).message(FrameKind.Response, 3, patterned(2), patterned(2 * CHUNK_BYTES))
    expect(stream.frames().map((frame) => [frame.kind, frame.payload.length])).toEqual([
      [FrameKind.Response, 6],
      [FrameKind.Data, CHUNK_BYTES],
      [FrameKind.Data, CHUNK_BYTES]
    ])
  })

  it('sends CANCEL as a header alone', async () => {
    const stream = new FakeStream()
    await new FrameWriter(stream.asStream()).cancel(0xabcdef)
    expect(Buffer.concat(stream.sent)).toEqual(Buffer.from([0, 0, 0, 0, FrameKind.Cancel, 0, 0xab, 0xcd, 0xef]))
  })

  it('interleaves a CANCEL between chunks', async () => {
    const stream = new FakeStream()
    const writer = new FrameWriter(stream.asStream())
    const sending = writer.message(FrameKind.Request, 1, patterned(8), patterned(3 * CHUNK_BYTES + 1))
    const cancelling = writer.cancel(1)
    await Promise.all([sending, cancelling])

    // The CANCEL was queued while the message was being sent, so it goes out after the chunk in
    // progress instead of after the whole message.
    const frames = stream.frames()
    expect(frames.map((frame) => frame.kind)).toEqual([FrameKind.Request, FrameKind.Cancel, FrameKind.Data, FrameKind.Data, FrameKind.Data, FrameKind.Data])
    expect(frames.every((frame) => frame.id === 1)).toBe(true)
  })

  it('interleaves other messages between chunks', async () => {
    const stream = new FakeStream(CHUNK_BYTES)
    const writer = new FrameWriter(stream.asStream())
    const first = writer.message(FrameKind.Request, 1, patterned(8, 1), patterned(2 * CHUNK_BYTES, 1))
    const second = writer.message(FrameKind.Request, 2, patterned(8, 2), patterned(10, 2))
    const cancel = writer.cancel(1)
    const third = writer.message(FrameKind.Response, 3, patterned(8, 3), null)

    let done = false
    const all = Promise.all([first, second, cancel, third]).then(() => {
      done = true
    })
    while (!done) {
      await settle()
      stream.drain()
    }
    await all

    const sent = stream.frames().map((frame) => [frame.kind, frame.id])
    // Every message keeps its own order: its REQUEST or RESPONSE first, then its chunks.
    expect(sent.filter(([, id]) => id === 1)).toEqual([
      [FrameKind.Request, 1],
      [FrameKind.Cancel, 1],
      [FrameKind.Data, 1],
      [FrameKind.Data, 1]
    ])
    expect(sent.filter(([, id]) => id === 2)).toEqual([
      [FrameKind.Request, 2],
      [FrameKind.Data, 2]
    ])
    // The short messages do not wait for the second chunk of the long one.
    expect(sent.indexOf(sent.find(([kind, id]) => kind === FrameKind.Response && id === 3)!)).toBeLessThan(sent.length - 1)
    expect(sent).toHaveLength(7)
    expect(stream.framesStartedWhileFull).toBe(0)
  })

  it('waits for drain before a frame', async () => {
    const stream = new FakeStream()
    stream.writableNeedsDrain = true
    let done = false
    const sending = new FrameWriter(stream.asStream())
      .message(FrameKind.Request, 1, patterned(8), null)
      .then(() => {
        done = true
      })

    await settle()
    expect(stream.sent).toHaveLength(0)
    expect(stream.waitingForDrain).toBe(1)
    expect(done).toBe(false)

    stream.drain()
    await sending
    expect(stream.frames().map((frame) => frame.kind)).toEqual([FrameKind.Request])
  })

  it('sends one chunk per drain', async () => {
    const stream = new FakeStream(CHUNK_BYTES)
    const data = patterned(3 * CHUNK_BYTES, 7)
    let done = false
    const sending = new FrameWriter(stream.asStream())
      .message(FrameKind.Request, 2, patterned(8), data)
      .then(() => {
        done = true
      })

    // The REQUEST fits, but the first chunk fills the buffer, so each later chunk waits for a drain.
    await settle()
    expect(stream.frames().map((frame) => frame.kind)).toEqual([FrameKind.Request, FrameKind.Data])
    expect(stream.waitingForDrain).toBe(1)
    expect(done).toBe(false)

    stream.drain()
    await settle()
    expect(stream.frames()).toHaveLength(3)
    expect(done).toBe(false)

    stream.drain()
    await sending
    expect(stream.frames()).toHaveLength(4)
    expect(stream.framesStartedWhileFull).toBe(0)
    expect(Buffer.concat(stream.frames().slice(1).map((frame) => frame.payload)).equals(data)).toBe(true)
  })

  it('continues after a failed send', async () => {
    const stream = new FakeStream()
    const writer = new FrameWriter(stream.asStream())
    stream.failNext()
    const failed = writer.message(FrameKind.Request, 1, patterned(8), null)
    const next = writer.cancel(2)

    await expect(failed).rejects.toThrow('stream closed')
    await next
    expect(stream.frames().map((frame) => [frame.kind, frame.id])).toEqual([[FrameKind.Cancel, 2]])
  })
})
