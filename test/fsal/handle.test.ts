import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { BadHandle } from '../../src/fsal/errors.js'
import { HANDLE_BYTES, HandleCodec } from '../../src/fsal/handle.js'

describe('handle codec', () => {
  const codec = new HandleCodec(randomBytes(32))
  const fields = { exportId: 0xdeadbeef, fileId: 2 ** 52 + 12345, generation: 1_700_000_000_123 }

  it('round-trips its fields', () => {
    const handle = codec.encode(fields)
    expect(handle.length).toBe(HANDLE_BYTES)
    expect(handle.length).toBeLessThanOrEqual(64)
    expect(codec.decode(handle)).toEqual(fields)
  })

  it('rejects every single-byte change', () => {
    const handle = codec.encode(fields)
    for (let i = 0; i < handle.length; i++) {
      const altered = Buffer.from(handle)
      altered[i] ^= 0x01
      expect(() => codec.decode(altered), `byte ${i}`).toThrow(BadHandle)
    }
  })

  it('rejects another key', () => {
    const other = new HandleCodec(randomBytes(32))
    expect(() => other.decode(codec.encode(fields))).toThrow(BadHandle)
  })

  it('rejects wrong lengths', () => {
    const handle = codec.encode(fields)
    expect(() => codec.decode(handle.subarray(0, HANDLE_BYTES - 1))).toThrow(BadHandle)
    expect(() => codec.decode(Buffer.concat([handle, Buffer.alloc(1)]))).toThrow(BadHandle)
  })
})
