// Addresses, CIDR blocks and host names in the configuration.

import { BlockList, isIP } from 'node:net'

import { describeValue } from './errors.js'
import type { FieldReader } from './fields.js'

/** Returns 4 or 6 for an IP address literal without a zone index (`fe80::1%eth0`), else 0. */
export function ipFamily(address: string): 0 | 4 | 6 {
  if (address.includes('%')) return 0
  const family = isIP(address)
  return family === 4 || family === 6 ? family : 0
}

/** True for 0.0.0.0 and ::, which accept connections on every interface but name no host. */
export function isUnspecifiedAddress(address: string): boolean {
  const family = ipFamily(address)
  if (family === 0) return false
  return addressBytes(address, family).every((byte) => byte === 0)
}

/** Reads an IP address literal, such as `nfs.bind`. */
export function readIpAddress(reader: FieldReader, value: unknown, field: string): string {
  const address = reader.string(value, field)
  if (address.includes('%')) {
    reader.fail(field, `${describeValue(address)} has a zone index; zone indexes are not supported, so use an address without "%"`)
  }
  if (ipFamily(address) === 0) {
    reader.fail(field, `${describeValue(address)} is not an IP address; write an IPv4 or IPv6 literal such as 127.0.0.1 or ::1`)
  }
  return address
}

const hostLabelPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/** Reads a DNS host name or an IP address literal, such as `nfs.advertise_host`. */
export function readHost(reader: FieldReader, value: unknown, field: string): string {
  const host = reader.string(value, field)
  if (host.startsWith('[') && host.endsWith(']')) {
    reader.fail(field, `${describeValue(host)} is in brackets; write the IPv6 address without brackets`)
  }
  if (ipFamily(host) !== 0) return host

  const labels = host.split('.')
  const validName =
    host.length <= 253 && labels.every((label) => hostLabelPattern.test(label)) && !/^[0-9]+$/.test(labels[labels.length - 1])
  if (!validName) {
    reader.fail(
      field,
      `${describeValue(host)} is neither an IP address nor a valid host name; write an address such as 192.0.2.10 or a name such as nfs.example.internal`
    )
  }
  return host
}

/**
 * Reads a CIDR block such as `10.0.0.0/8` or `::1/128` and returns it in `address/prefix` form,
 * where a bare address gets /32 or /128. Host bits after the prefix must be zero, so that
 * `192.168.1.5/24` (which would admit the whole subnet) is an error rather than a surprise.
 */
export function readCidr(reader: FieldReader, value: unknown, field: string): string {
  const text = reader.string(value, field)
  const valueText = describeValue(text)
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const prefixText = slash === -1 ? null : text.slice(slash + 1)
  const usage = 'write an address or a CIDR block such as 10.0.0.0/8, 127.0.0.1 or ::1/128'

  if (address.includes('%')) reader.fail(field, `${valueText} has a zone index; zone indexes are not supported, so ${usage}`)
  const family = ipFamily(address)
  if (family === 0) reader.fail(field, `${valueText} is not a valid address or CIDR block; ${usage}`)

  const maxPrefix = family === 4 ? 32 : 128
  if (prefixText !== null && !/^[0-9]{1,3}$/.test(prefixText)) {
    reader.fail(field, `${valueText} has an invalid prefix length; the prefix after "/" is an integer from 0 to ${maxPrefix}`)
  }
  const prefix = prefixText === null ? maxPrefix : Number(prefixText)
  if (prefix > maxPrefix) {
    reader.fail(field, `${valueText} has prefix length ${prefix}, above the IPv${family} maximum of ${maxPrefix}; use 0 to ${maxPrefix}`)
  }

  const network = maskAddress(addressBytes(address, family), prefix)
  if (!sameBytes(network, addressBytes(address, family))) {
    reader.fail(field, `${valueText} has bits set after the /${prefix} prefix; write ${formatBytes(network, family)}/${prefix} for the whole block, or the bare address for one host`)
  }

  // Node's BlockList must accept the block too, so that a server can match clients against it.
  try {
    new BlockList().addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6')
  } catch (error) {
    reader.fail(field, `${valueText} is not a valid CIDR block (${(error as Error).message}); ${usage}`)
  }
  return `${address}/${prefix}`
}

/** Reads a non-empty list of CIDR blocks. */
export function readCidrList(reader: FieldReader, value: unknown, field: string): string[] {
  const items = reader.list(value, field)
  if (items.length === 0) {
    reader.fail(field, 'the list is empty, so no client could mount; list at least one address or CIDR block such as 127.0.0.0/8')
  }
  return items.map((item, index) => readCidr(reader, item, `${field}[${index}]`))
}

/** Converts a valid IP literal to its 4 or 16 bytes. */
function addressBytes(address: string, family: 4 | 6): number[] {
  if (family === 4) return address.split('.').map(Number)

  // A dotted IPv4 tail (::ffff:192.0.2.1) becomes two hex groups before "::" is expanded.
  let text = address
  const lastColon = text.lastIndexOf(':')
  const lastPart = text.slice(lastColon + 1)
  if (lastPart.includes('.')) {
    const [a, b, c, d] = addressBytes(lastPart, 4)
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }

  const halves = text.split('::')
  const head = halves[0] === '' ? [] : halves[0].split(':')
  const tail = halves.length === 1 || halves[1] === '' ? [] : halves[1].split(':')
  const zeros = halves.length === 1 ? [] : new Array<string>(8 - head.length - tail.length).fill('0')

  const bytes: number[] = []
  for (const group of [...head, ...zeros, ...tail]) {
    const value = parseInt(group, 16)
    bytes.push(value >> 8, value & 0xff)
  }
  return bytes
}

function maskAddress(bytes: number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bitsInByte = Math.max(0, Math.min(8, prefix - index * 8))
    return byte & ((0xff << (8 - bitsInByte)) & 0xff)
  })
}

function sameBytes(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index])
}

function formatBytes(bytes: number[], family: 4 | 6): string {
  if (family === 4) return bytes.join('.')
  const ipv4Mapped = bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  if (ipv4Mapped) return `::ffff:${bytes.slice(12).join('.')}`
  const groups: string[] = []
  for (let index = 0; index < bytes.length; index += 2) groups.push(((bytes[index] << 8) | bytes[index + 1]).toString(16))
  return compressIpv6(groups)
}

/** Writes eight IPv6 groups with the longest run of two or more zero groups as "::". */
function compressIpv6(groups: string[]): string {
  let bestStart = -1
  let bestLength = 1
  for (let start = 0; start < groups.length; start++) {
    let length = 0
    while (start + length < groups.length && groups[start + length] === '0') length++
    if (length > bestLength) {
      bestStart = start
      bestLength = length
    }
  }
  if (bestStart === -1) return groups.join(':')
  const head = groups.slice(0, bestStart).join(':')
  const tail = groups.slice(bestStart + bestLength).join(':')
  return `${head}::${tail}`
}
