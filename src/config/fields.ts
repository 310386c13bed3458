// Typed reads from the plain value that YAML parsing produced. Every failed check throws
// ConfigError with the config source, the field path and the offending value.

import { ConfigError, describeKind, describeValue } from './errors.js'

export type PlainMap = Record<string, unknown>

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** Appends a map key to a field path: `nfs` + `port` is `nfs.port`, and other keys become `["my key"]`. */
export function childField(parent: string, key: string): string {
  if (!identifierPattern.test(key)) return `${parent}[${JSON.stringify(key)}]`
  return parent === '' ? key : `${parent}.${key}`
}

export function isPlainMap(value: unknown): value is PlainMap {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/** True for a key that is absent or written without a value (`key:` or `key: ~`). */
export function isUnset(value: unknown): value is null | undefined {
  return value === null || value === undefined
}

export interface IntegerRange {
  min: number
  max: number
  /** Description of the accepted values for messages, such as "an integer from 1 to 65535". */
  expected: string
}

/** Reads values for one config source. `fail` and every check throw ConfigError. */
export class FieldReader {
  constructor(readonly source: string) {}

  fail(field: string, detail: string): never {
    throw new ConfigError({ source: this.source, field, detail })
  }

  /** Returns the map at `field`, or an empty map when the value is unset. */
  optionalMap(value: unknown, field: string): PlainMap {
    if (isUnset(value)) return {}
    return this.map(value, field)
  }

  map(value: unknown, field: string): PlainMap {
    if (!isPlainMap(value)) {
      this.fail(field, `expected a map of keys and values, got ${describeKind(value)}; write it as "key: value" lines`)
    }
    return value
  }

  list(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) {
      this.fail(field, `expected a list, got ${describeKind(value)}; write each item on its own "- " line`)
    }
    return value
  }

  /** Rejects every key of `map` not in `known`, suggesting the closest known key. */
  checkKeys(map: PlainMap, field: string, known: readonly string[]): void {
    for (const key of Object.keys(map)) {
      if (known.includes(key)) continue
      const suggestion = closestKey(key, known)
      const hint = suggestion === null ? '' : `did you mean "${suggestion}"? `
      const where = field === '' ? 'at the top level' : `in ${field}`
      const knownList = known.length === 0 ? 'no keys are accepted here' : `the known keys are ${known.join(', ')}`
      this.fail(childField(field, key), `unknown key ${JSON.stringify(key)} ${where}; ${hint}${knownList}`)
    }
  }

  /** Reads a non-empty string without control characters. */
  string(value: unknown, field: string): string {
    if (typeof value !== 'string') {
      const quoteHint = typeof value === 'number' || typeof value === 'boolean' ? '; put the value in quotes' : ''
      this.fail(field, `expected a string, got ${describeKind(value)}${quoteHint}`)
    }
    if (value === '') this.fail(field, 'the value is an empty string; give a value or remove the key')
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      this.fail(field, `${describeValue(value)} contains a control character; remove it`)
    }
    return value
  }

  /** Reads a YAML integer within `range`. A quoted number is rejected with a hint to remove the quotes. */
  integer(value: unknown, field: string, range: IntegerRange): number {
    if (typeof value === 'string' && /^-?[0-9]+$/.test(value.trim())) {
      this.fail(field, `expected ${range.expected}, got the string ${describeValue(value)}; remove the quotes`)
    }
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.fail(field, `expected ${range.expected}, got ${describeKind(value)}`)
    }
    if (value < range.min || value > range.max) {
      this.fail(field, `${value} is out of range; use ${range.expected}`)
    }
    return value
  }
}

/** Finds the known key a misspelled one most likely meant: same letters ignoring case, `-` and `_`, or at most two edits away. */
export function closestKey(key: string, known: readonly string[]): string | null {
  const simplify = (text: string) => text.toLowerCase().replace(/[-_]/g, '')
  const simpleKey = simplify(key)
  const sameLetters = known.find((candidate) => simplify(candidate) === simpleKey)
  if (sameLetters !== undefined) return sameLetters

  let best: string | null = null
  let bestDistance = 3
  for (const candidate of known) {
    const distance = editDistance(simpleKey, simplify(candidate))
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** Levenshtein distance between two short strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution))
    }
    previous = current
  }
  return previous[b.length]
}
