// Size values such as `size_limit: 10Gi`.
//
// Accepted forms: a YAML integer (bytes), or a string of digits with an optional decimal part and
// an optional unit. Binary units Ki, Mi, Gi, Ti are powers of 1024, decimal units K, M, G, T are
// powers of 1000, and nothing else is accepted: no trailing "B", no lowercase units, no spaces.
// A decimal part is allowed only when the result is a whole number of bytes ("1.5Gi" and "1.5K"
// are fine, "1.5" and "1.0001K" are not). Zero, negative values and values above
// Number.MAX_SAFE_INTEGER are rejected.

import { ConfigError, describeKind, describeValue } from './errors.js'

const binaryUnits: ReadonlyArray<readonly [string, bigint]> = [
  ['Ti', 1024n ** 4n],
  ['Gi', 1024n ** 3n],
  ['Mi', 1024n ** 2n],
  ['Ki', 1024n]
]

const decimalUnits: ReadonlyArray<readonly [string, bigint]> = [
  ['T', 1000n ** 4n],
  ['G', 1000n ** 3n],
  ['M', 1000n ** 2n],
  ['K', 1000n]
]

const unitFactors = new Map<string, bigint>([...binaryUnits, ...decimalUnits])

const sizePattern = /^([0-9]+)(?:\.([0-9]+))?(Ki|Mi|Gi|Ti|K|M|G|T)?$/
const trailingBytePattern = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?B$/
const innerSpacePattern = /^([0-9]+(?:\.[0-9]+)?)\s+(Ki|Mi|Gi|Ti|K|M|G|T)$/

const syntaxHint =
  'write a whole number of bytes, or a number followed by Ki, Mi, Gi or Ti (powers of 1024) ' +
  'or K, M, G or T (powers of 1000), such as 512Mi or 10Gi'

const maxSafeBytes = BigInt(Number.MAX_SAFE_INTEGER)

/**
 * Parses a size into bytes, throwing ConfigError (naming `field` and `source`) when the value is
 * not a positive whole number of bytes no larger than Number.MAX_SAFE_INTEGER.
 */
export function parseSize(value: unknown, field: string, source?: string): number {
  const fail = (detail: string): never => {
    throw new ConfigError({ source, field, detail })
  }

  if (typeof value === 'number') {
    if (!Number.isFinite(value) || !Number.isInteger(value)) {
      return fail(`${describeValue(value)} is not a whole number of bytes; ${syntaxHint}`)
    }
    return checkRange(BigInt(value), describeValue(value), fail)
  }

  if (typeof value !== 'string') {
    return fail(`expected a size, got ${describeKind(value)}; ${syntaxHint}`)
  }

  const valueText = describeValue(value)
  const match = sizePattern.exec(value)
  if (match === null) return fail(explainInvalidSize(value, valueText))

  const [, wholeDigits, fractionDigits = '', unit] = match
  const factor = unit === undefined ? 1n : unitFactors.get(unit)!

  // Exact arithmetic: "1.5Gi" is 15 * 1024^3 / 10, which must divide evenly.
  const scale = 10n ** BigInt(fractionDigits.length)
  const scaledBytes = BigInt(wholeDigits + fractionDigits) * factor
  if (scaledBytes % scale !== 0n) {
    return fail(
      `${valueText} is not a whole number of bytes; a decimal size must come to whole bytes, ` +
        `so use a larger unit or ${syntaxHint}`
    )
  }
  return checkRange(scaledBytes / scale, valueText, fail)
}

function checkRange(bytes: bigint, valueText: string, fail: (detail: string) => never): number {
  if (bytes < 0n) return fail(`${valueText} is negative; a size must be greater than zero, ${syntaxHint}`)
  if (bytes === 0n) {
    return fail(`${valueText} is zero; a size must be greater than zero, so give a positive size or remove the key`)
  }
  if (bytes > maxSafeBytes) {
    return fail(`${valueText} is too large; the maximum size is ${Number.MAX_SAFE_INTEGER} bytes (about 8191Ti)`)
  }
  return Number(bytes)
}

/** Builds the message for a string that does not match the size syntax, with a fix when one is obvious. */
function explainInvalidSize(value: string, valueText: string): string {
  const withByteSuffix = trailingBytePattern.exec(value)
  if (withByteSuffix !== null) {
    const [, amount, unit = ''] = withByteSuffix
    return `${valueText} is not a valid size; sizes take no "B" suffix, so write ${amount}${unit}`
  }
  const withSpace = innerSpacePattern.exec(value)
  if (withSpace !== null) {
    return `${valueText} is not a valid size; remove the space and write ${withSpace[1]}${withSpace[2]}`
  }
  if (value.trim() !== value) {
    return `${valueText} is not a valid size; remove the leading and trailing spaces`
  }
  if (value.startsWith('-')) {
    return `${valueText} is negative; a size must be greater than zero, ${syntaxHint}`
  }
  return `${valueText} is not a valid size; units are case-sensitive, ${syntaxHint}`
}

/**
 * Formats a byte count in the syntax parseSize accepts, with the largest unit that divides it
 * exactly: 1073741824 is "1Gi", 500000000 is "500M" and 1234567 stays "1234567".
 */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) return String(bytes)
  for (const [suffix, factor] of [...binaryUnits, ...decimalUnits]) {
    const unitBytes = Number(factor)
    if (bytes % unitBytes === 0) return `${bytes / unitBytes}${suffix}`
  }
  return String(bytes)
}
