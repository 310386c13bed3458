import { describe, expect, it } from 'vitest'

import { expectConfigError, oneVolume, parse } from './helpers.js'

const withClients = (entries: string[]) => oneVolume({}, `nfs:\n  allowed_clients:\n${entries.map((entry) => `    - "${entry}"\n`).join('')}`)

describe('allowed_clients CIDR', () => {
  const valid: Array<[string, string]> = [
    ['127.0.0.0/8', '127.0.0.0/8'],
    ['::1/128', '::1/128'],
    ['10.0.0.1', '10.0.0.1/32'],
    ['::1', '::1/128'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::/0', '::/0'],
    ['fe80::/10', 'fe80::/10'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['2001:db8:0:1::/64', '2001:db8:0:1::/64'],
    ['::ffff:10.0.0.0/104', '::ffff:10.0.0.0/104'],
    ['192.168.1.128/25', '192.168.1.128/25']
  ]
  it.each(valid)('accepts %s', (entry, normalized) => {
    expect(parse(withClients([entry])).nfs.allowedClients).toEqual([normalized])
  })

  const invalid: Array<[string, string]> = [
    ['10.0.0.0/33', 'above the IPv4 maximum of 32'],
    ['::1/129', 'above the IPv6 maximum of 128'],
    ['abc', 'not a valid address or CIDR block'],
    ['10.0.0/8', 'not a valid address or CIDR block'],
    ['10.0.0.0/', 'invalid prefix length'],
    ['10.0.0.0/8/8', 'invalid prefix length'],
    ['10.0.0.0/-1', 'invalid prefix length'],
    ['10.0.0.0/x', 'invalid prefix length'],
    ['10.0.0.0/ 8', 'invalid prefix length'],
    ['fe80::1%eth0/64', 'zone index'],
    ['192.168.1.5/24', 'write 192.168.1.0/24'],
    ['10.0.0.1/8', 'write 10.0.0.0/8'],
    ['2001:db8::1/32', 'write 2001:db8::/32'],
    ['::ffff:10.1.2.3/104', 'write ::ffff:10.0.0.0/104'],
    ['localhost', 'not a valid address or CIDR block']
  ]
  it.each(invalid)('rejects %s', (entry, reason) => {
    expectConfigError(withClients(['127.0.0.1', entry]), 'nfs.allowed_clients[1]', `"${entry}"`, reason)
  })

  it('rejects a number entry', () => {
    expectConfigError(oneVolume({}, 'nfs:\n  allowed_clients: [10]\n'), 'nfs.allowed_clients[0]', 'got the number 10')
  })

  it('rejects a string value', () => {
    expectConfigError(oneVolume({}, 'nfs:\n  allowed_clients: 10.0.0.0/8\n'), 'nfs.allowed_clients', 'expected a list, got the string "10.0.0.0/8"')
  })

  it('rejects empty list', () => {
    expectConfigError(oneVolume({}, 'nfs:\n  allowed_clients: []\n'), 'nfs.allowed_clients', 'no client could mount')
  })
})
