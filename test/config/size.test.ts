import { describe, expect, it } from 'vitest'

import { ConfigError, formatSize, parseSize } from '../../src/config/index.js'
import { catchConfigError, expectConfigError, oneVolume, parse } from './helpers.js'

const Ki = 1024
const Mi = 1024 ** 2
const Gi = 1024 ** 3
const Ti = 1024 ** 4

describe('parseSize', () => {
  const valid: Array<[unknown, number]> = [
    [1, 1],
    [512, 512],
    ['512', 512],
    ['007', 7],
    ['1Ki', Ki],
    ['512Mi', 512 * Mi],
    ['10Gi', 10 * Gi],
    ['2Ti', 2 * Ti],
    ['1K', 1000],
    ['2M', 2_000_000],
    ['3G', 3_000_000_000],
    ['1T', 1_000_000_000_000],
    ['1.5Gi', 1.5 * Gi],
    ['0.5Ki', 512],
    ['1.5K', 1500],
    ['2.0', 2],
    ['8191Ti', 8191 * Ti],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER]
  ]
  it.each(valid)('accepts %j', (value, bytes) => {
    expect(parseSize(value, 'size_limit')).toBe(bytes)
  })

  const invalid: Array<[unknown, string]> = [
    [0, 'is zero'],
    ['0', 'is zero'],
    ['0Gi', 'is zero'],
    ['0.0', 'is zero'],
    [-1, 'is negative'],
    ['-5Gi', 'is negative'],
    [1.5, 'not a whole number of bytes'],
    ['1.5', 'not a whole number of bytes'],
    ['1.0001K', 'not a whole number of bytes'],
    ['10gb', 'units are case-sensitive'],
    ['10gi', 'units are case-sensitive'],
    ['10k', 'units are case-sensitive'],
    ['10GB', 'write 10G'],
    ['10GiB', 'write 10Gi'],
    ['1.5GiB', 'write 1.5Gi'],
    ['512B', 'write 512'],
    ['10 Gi', 'write 10Gi'],
    ['10 G B', 'not a valid size'],
    [' 10Gi', 'remove the leading and trailing spaces'],
    ['Gi', 'not a valid size'],
    ['', 'not a valid size'],
    ['.5Gi', 'not a valid size'],
    ['5.Gi', 'not a valid size'],
    ['1e9', 'not a valid size'],
    ['0x10', 'not a valid size'],
    ['+5', 'not a valid size'],
    [Number.MAX_SAFE_INTEGER + 1, 'too large'],
    ['8192Ti', 'too large'],
    ['99999999999999999999', 'too large'],
    [Infinity, 'not a whole number'],
    [NaN, 'not a whole number']
  ]
  it.each(invalid)('rejects %j', (value, reason) => {
    const error = catchConfigError(() => parseSize(value, 'volumes[0].size_limit', 'node.yaml'))
    expect(error.field).toBe('volumes[0].size_limit')
    expect(error.message).toContain(reason)
    expect(error.message.startsWith('node.yaml: volumes[0].size_limit: ')).toBe(true)
    if (typeof value === 'string') expect(error.message).toContain(JSON.stringify(value))
    else expect(error.message).toContain(String(value))
  })

  const wrongTypes: Array<[unknown, string]> = [
    [true, 'the boolean true'],
    [null, 'an empty value'],
    [[1], 'a list'],
    [{ size: 1 }, 'a map']
  ]
  it.each(wrongTypes)('rejects type of %j', (value, shown) => {
    const error = catchConfigError(() => parseSize(value, 'size_limit'))
    expect(error.message).toContain(`expected a size, got ${shown}`)
  })

  it('omits source when none given', () => {
    const error = catchConfigError(() => parseSize('big', 'size_limit'))
    expect(error.message.startsWith('size_limit: "big" ')).toBe(true)
    expect(error.source).toBeNull()
  })

  it('lists the units in the message', () => {
    const error = catchConfigError(() => parseSize('10 lots', 'size_limit'))
    expect(error.message).toContain('Ki, Mi, Gi or Ti (powers of 1024)')
    expect(error.message).toContain('K, M, G or T (powers of 1000)')
  })
})

describe('formatSize', () => {
  const cases: Array<[number, string]> = [
    [1, '1'],
    [1000, '1K'],
    [1024, '1Ki'],
    [1536, '1536'],
    [1_500_000, '1500K'],
    [Gi, '1Gi'],
    [4 * Mi + 64 * Ki, '4160Ki'],
    [500_000_000, '500M'],
    [3 * Ti, '3Ti'],
    [1_234_567, '1234567']
  ]
  it.each(cases)('formats %d', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text)
  })

  it.each(cases)('round-trips %d', (bytes) => {
    expect(parseSize(formatSize(bytes), 'size')).toBe(bytes)
  })
})

describe('size_limit in a file', () => {
  it('parses a binary unit', () => {
    const config = parse(oneVolume({ size_limit: '10Gi' }))
    expect(config.volumes[0].sizeLimitBytes).toBe(10 * Gi)
  })

  it('parses a plain YAML integer', () => {
    const config = parse(oneVolume({ size_limit: '1073741824' }))
    expect(config.volumes[0].sizeLimitBytes).toBe(Gi)
  })

  it('defaults to no limit', () => {
    expect(parse(oneVolume()).volumes[0].sizeLimitBytes).toBeNull()
  })

  it('rejects lowercase gb', () => {
    expectConfigError(oneVolume({ size_limit: '10gb' }), 'volumes[0].size_limit', '"10gb"')
  })

  it('rejects zero', () => {
    const error = expectConfigError(oneVolume({ size_limit: '0' }), 'volumes[0].size_limit', '0 is zero')
    expect(error).toBeInstanceOf(ConfigError)
  })
})
