// Values that remote operations carry in CBOR, with checks on what arrives: attributes travel
// as a fixed array, and every field read from a peer is checked before use.

import { FileAttributes, type FileType, type SetAttributes, type SetTime } from '../fsal/types.js'
import { ProtocolError } from './channel.js'

const FILE_TYPES: readonly FileType[] = ['file', 'dir', 'symlink', 'block', 'char', 'socket', 'fifo']

export type WireAttributes = number[]

/** The numeric attributes in the order they travel, after the file type's index. */
const NUMERIC_FIELDS = [
  'mode',
  'nlink',
  'sizeBytes',
  'usedBytes',
  'rdevMajor',
  'rdevMinor',
  'fileId',
  'generation',
  'atimeSec',
  'atimeNsec',
  'mtimeSec',
  'mtimeNsec',
  'ctimeSec',
  'ctimeNsec'
] as const satisfies ReadonlyArray<keyof FileAttributes>

export function encodeAttributes(attributes: FileAttributes): WireAttributes {
  return [FILE_TYPES.indexOf(attributes.type), ...NUMERIC_FIELDS.map((field) => attributes[field])]
}

export function decodeAttributes(value: unknown): FileAttributes {
  const length = NUMERIC_FIELDS.length + 1
  if (!Array.isArray(value) || value.length !== length || !value.every((item) => Number.isSafeInteger(item) && item >= 0)) {
    throw new ProtocolError(`attributes from the owner are not ${length} non-negative integers`)
  }
  const type = FILE_TYPES[value[0] as number]
  if (type === undefined) throw new ProtocolError(`unknown file type ${String(value[0])} from the owner`)
  const attributes = new FileAttributes()
  attributes.type = type
  NUMERIC_FIELDS.forEach((field, index) => {
    attributes[field] = value[index + 1] as number
  })
  return attributes
}

/** Reads a field of the request arguments, checking its type; the error names the field. */
export class ArgumentReader {
  constructor(private readonly args: Record<string, unknown>) {}

  private fail(field: string, expected: string): never {
    throw new ArgumentError(`argument ${field} must be ${expected}`)
  }

  integer(field: string, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.args[field]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) this.fail(field, `an integer from 0 to ${max}`)
    return value
  }

  optionalInteger(field: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
    return this.args[field] === undefined ? undefined : this.integer(field, max)
  }

  bytes(field: string): Buffer {
    const value = this.args[field]
    if (!(value instanceof Uint8Array)) this.fail(field, 'a byte string')
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  }

  string(field: string): string {
    const value = this.args[field]
    if (typeof value !== 'string') this.fail(field, 'a string')
    return value
  }

  choice<T extends string>(field: string, choices: readonly T[]): T {
    const value = this.args[field]
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) this.fail(field, `one of ${choices.join(', ')}`)
    return value as T
  }

  setAttributes(field: string): SetAttributes {
    const value = this.args[field]
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(field, 'a map')
    const inner = new ArgumentReader(value as Record<string, unknown>)
    const changes: SetAttributes = {}
    changes.mode = inner.optionalInteger('mode', 0o7777)
    changes.sizeBytes = inner.optionalInteger('sizeBytes')
    changes.atime = inner.setTime('atime')
    changes.mtime = inner.setTime('mtime')
    for (const key of Object.keys(changes) as Array<keyof SetAttributes>) if (changes[key] === undefined) delete changes[key]
    return changes
  }

  private setTime(field: string): SetTime | undefined {
    const value = this.args[field] as { kind?: unknown; sec?: unknown; nsec?: unknown } | undefined
    if (value === undefined) return undefined
    if (value !== null && typeof value === 'object' && value.kind === 'server') return { kind: 'server' }
    const inner = new ArgumentReader((value ?? {}) as Record<string, unknown>)
    if (value === null || typeof value !== 'object' || value.kind !== 'client') this.fail(field, 'a time of kind server or client')
    return { kind: 'client', sec: inner.integer('sec', 0xffff_ffff), nsec: inner.integer('nsec', 999_999_999) }
  }
}

/** Thrown for a request whose arguments have the wrong shape. The owner replies INVAL. */
export class ArgumentError extends Error {
  override name = 'ArgumentError'
}
