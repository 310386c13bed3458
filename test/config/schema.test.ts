import { hostname } from 'node:os'
import { resolve } from 'node:path'

import { describe, expect, it } from 'vitest'

import { defaults } from '../../src/config/index.js'
import { catchConfigError, expectConfigError, oneVolume, parse, source } from './helpers.js'

describe('top level', () => {
  it('applies every default', () => {
    const config = parse(oneVolume())
    expect(config.source).toBe(source)
    expect(config.nodeName).toBe(hostname())
    expect(config.dataDir).toBe('/etc/aegis/.aegis')
    expect(config.nfs).toEqual({
      bind: '127.0.0.1',
      port: 2049,
      allowedClients: ['127.0.0.0/8', '::1/128'],
      maxRecordBytes: 4 * 1024 * 1024 + 64 * 1024,
      advertiseHost: null
    })
    expect(config.audit).toEqual({ path: '/etc/aegis/.aegis/audit.jsonl', maxPendingEvents: 65536 })
  })

  it('rejects unknown key with hint', () => {
    const text = oneVolume().replace('volumes:', 'volume:')
    expectConfigError(text, 'volume', 'unknown key "volume" at the top level', 'did you mean "volumes"?', 'node, nfs, audit, volumes')
  })

  it('rejects unknown key without hint', () => {
    const error = expectConfigError(`version: 1\n${oneVolume()}`, 'version', '"version"', 'the known keys are node, nfs, audit, volumes')
    expect(error.message).not.toContain('did you mean')
  })

  it('rejects a list document', () => {
    const error = catchConfigError(() => parse('- name: data\n'))
    expect(error.field).toBe('')
    expect(error.message).toBe(`${source}: expected a map of keys and values, got a list; write it as "key: value" lines`)
  })

  it('rejects a scalar document', () => {
    const error = catchConfigError(() => parse('hello\n'))
    expect(error.message).toContain('got the string "hello"')
  })

  it('rejects an empty file', () => {
    expectConfigError('', 'volumes', 'no volumes configured')
  })

  it('rejects a comment-only file', () => {
    expectConfigError('# nothing yet\n', 'volumes', 'no volumes configured')
  })

  it('rejects empty volumes list', () => {
    expectConfigError('volumes: []\n', 'volumes', 'no volumes configured')
  })

  it('rejects volumes without value', () => {
    expectConfigError('volumes:\n', 'volumes', 'no volumes configured')
  })

  it('rejects volumes as a map', () => {
    expectConfigError('volumes: {}\n', 'volumes', 'expected a list, got a map')
  })

  it('rejects volumes as a string', () => {
    expectConfigError('volumes: data\n', 'volumes', 'expected a list, got the string "data"')
  })

  it.each(['node', 'nfs', 'audit'])('rejects %s as a list', (section) => {
    expectConfigError(`${section}: []\n${oneVolume()}`, section, 'expected a map of keys and values, got a list')
  })

  it.each(['node', 'nfs', 'audit'])('allows empty %s section', (section) => {
    expect(parse(`${section}:\n${oneVolume()}`).volumes).toHaveLength(1)
  })
})

describe('node section', () => {
  it('reads name and data_dir', () => {
    const config = parse(oneVolume({}, 'node:\n  name: storage-1\n  data_dir: /var/lib/aegis\n'))
    expect(config.nodeName).toBe('storage-1')
    expect(config.dataDir).toBe('/var/lib/aegis')
    expect(config.audit.path).toBe('/var/lib/aegis/audit.jsonl')
  })

  it('resolves relative data_dir against the file', () => {
    const config = parse(oneVolume({}, 'node:\n  data_dir: state/aegis\n'))
    expect(config.dataDir).toBe('/etc/aegis/state/aegis')
  })

  it('rejects unknown key', () => {
    expectConfigError(oneVolume({}, 'node:\n  datadir: /x\n'), 'node.datadir', 'did you mean "data_dir"?', 'name, data_dir')
  })

  it('rejects name with spaces', () => {
    expectConfigError(oneVolume({}, 'node:\n  name: my node\n'), 'node.name', '"my node" is not a valid node name')
  })

  it('rejects numeric name', () => {
    expectConfigError(oneVolume({}, 'node:\n  name: 42\n'), 'node.name', 'got the number 42', 'put the value in quotes')
  })

  it('rejects empty name', () => {
    expectConfigError(oneVolume({}, 'node:\n  name: ""\n'), 'node.name', 'empty string')
  })

  it('rejects tilde in data_dir', () => {
    expectConfigError(oneVolume({}, 'node:\n  data_dir: ~/aegis\n'), 'node.data_dir', '"~/aegis"', 'not expanded')
  })

  it('rejects data_dir as a number', () => {
    expectConfigError(oneVolume({}, 'node:\n  data_dir: 5\n'), 'node.data_dir', 'got the number 5')
  })
})

describe('nfs section', () => {
  const withNfs = (lines: string) => oneVolume({}, `nfs:\n${lines}`)

  it('reads every key', () => {
    const config = parse(
      withNfs(
        '  bind: 0.0.0.0\n  port: 12049\n  allowed_clients: [10.0.0.0/8, "fd00::/8"]\n' +
          '  max_record_bytes: 1Mi\n  advertise_host: nfs.example.internal\n'
      )
    )
    expect(config.nfs).toEqual({
      bind: '0.0.0.0',
      port: 12049,
      allowedClients: ['10.0.0.0/8', 'fd00::/8'],
      maxRecordBytes: 1024 * 1024,
      advertiseHost: 'nfs.example.internal'
    })
  })

  it.each([0, 1, 2049, 65535])('accepts port %d', (port) => {
    expect(parse(withNfs(`  port: ${port}\n`)).nfs.port).toBe(port)
  })

  const badPorts: Array<[string, string]> = [
    ['-1', '-1 is out of range'],
    ['65536', '65536 is out of range'],
    ['"2049"', 'got the string "2049"; remove the quotes'],
    ['abc', 'got the string "abc"'],
    ['1.5', 'got the number 1.5'],
    ['true', 'got the boolean true'],
    ['[2049]', 'got a list']
  ]
  it.each(badPorts)('rejects port %s', (port, fragment) => {
    expectConfigError(withNfs(`  port: ${port}\n`), 'nfs.port', fragment, 'an integer from 1 to 65535')
  })

  it.each(['0.0.0.0', '::', '::1', '192.0.2.10'])('accepts bind %s', (address) => {
    expect(parse(withNfs(`  bind: "${address}"\n`)).nfs.bind).toBe(address)
  })

  const badBinds: Array<[string, string]> = [
    ['localhost', 'is not an IP address'],
    ['127.0.0.1:2049', 'is not an IP address'],
    ['256.0.0.1', 'is not an IP address'],
    ['fe80::1%eth0', 'zone index'],
    ['[::1]', 'is not an IP address']
  ]
  it.each(badBinds)('rejects bind %s', (address, fragment) => {
    expectConfigError(withNfs(`  bind: "${address}"\n`), 'nfs.bind', `"${address}"`, fragment)
  })

  it.each(['nfs.example.internal', 'storage-1', '192.0.2.10', '2001:db8::10'])('accepts advertise_host %s', (host) => {
    expect(parse(withNfs(`  advertise_host: "${host}"\n`)).nfs.advertiseHost).toBe(host)
  })

  const badHosts: Array<[string, string]> = [
    ['[::1]', 'without brackets'],
    ['bad host', 'neither an IP address nor a valid host name'],
    ['a..b', 'neither an IP address nor a valid host name'],
    ['-lead.example', 'neither an IP address nor a valid host name'],
    ['1.2.3', 'neither an IP address nor a valid host name'],
    ['host:2049', 'neither an IP address nor a valid host name']
  ]
  it.each(badHosts)('rejects advertise_host %s', (host, fragment) => {
    expectConfigError(withNfs(`  advertise_host: "${host}"\n`), 'nfs.advertise_host', `"${host}"`, fragment)
  })

  it.each([
    ['64Ki', 64 * 1024],
    ['64Mi', 64 * 1024 * 1024],
    ['65536', 65536]
  ])('accepts max_record_bytes %s', (size, bytes) => {
    expect(parse(withNfs(`  max_record_bytes: ${size}\n`)).nfs.maxRecordBytes).toBe(bytes)
  })

  it.each(['32Ki', '65535', '65Mi', '1Gi'])('rejects max_record_bytes %s', (size) => {
    expectConfigError(withNfs(`  max_record_bytes: ${size}\n`), 'nfs.max_record_bytes', size, 'out of range', 'from 64Ki to 64Mi')
  })

  it('rejects malformed max_record_bytes', () => {
    expectConfigError(withNfs('  max_record_bytes: 4MB\n'), 'nfs.max_record_bytes', '"4MB"', 'write 4M')
  })

  it('rejects unknown key', () => {
    expectConfigError(withNfs('  host: 127.0.0.1\n'), 'nfs.host', '"host"', 'bind, port, allowed_clients, max_record_bytes, advertise_host')
  })
})

describe('audit section', () => {
  const withAudit = (lines: string) => oneVolume({}, `audit:\n${lines}`)

  it('resolves relative path against the file', () => {
    expect(parse(withAudit('  path: logs/audit.jsonl\n')).audit.path).toBe('/etc/aegis/logs/audit.jsonl')
  })

  it('keeps absolute path', () => {
    expect(parse(withAudit('  path: /var/log/aegis/audit.jsonl\n')).audit.path).toBe('/var/log/aegis/audit.jsonl')
  })

  it('reads max_pending_events', () => {
    expect(parse(withAudit('  max_pending_events: 1\n')).audit.maxPendingEvents).toBe(1)
  })

  it('rejects zero max_pending_events', () => {
    expectConfigError(withAudit('  max_pending_events: 0\n'), 'audit.max_pending_events', '0 is out of range', 'a positive integer')
  })

  it('rejects quoted max_pending_events', () => {
    expectConfigError(withAudit('  max_pending_events: "100"\n'), 'audit.max_pending_events', '"100"', 'remove the quotes')
  })

  it('rejects tilde path', () => {
    expectConfigError(withAudit('  path: ~/audit.jsonl\n'), 'audit.path', '"~/audit.jsonl"')
  })

  it('rejects unknown key', () => {
    expectConfigError(withAudit('  file: x\n'), 'audit.file', '"file"', 'path, max_pending_events')
  })
})

describe('overrides', () => {
  it('replace file values', () => {
    const text = oneVolume({}, 'node:\n  data_dir: /var/lib/aegis\nnfs:\n  bind: 0.0.0.0\n  port: 2049\n')
    const config = parse(text, { dataDir: '/tmp/aegis-test', nfsPort: 0, nfsBind: '::1' })
    expect(config.dataDir).toBe('/tmp/aegis-test')
    expect(config.nfs.port).toBe(0)
    expect(config.nfs.bind).toBe('::1')
    expect(config.audit.path).toBe('/tmp/aegis-test/audit.jsonl')
  })

  it('resolve data dir against cwd', () => {
    expect(parse(oneVolume(), { dataDir: 'state' }).dataDir).toBe(resolve(process.cwd(), 'state'))
  })

  it('keep an explicit audit path', () => {
    const config = parse(oneVolume({}, 'audit:\n  path: /var/log/audit.jsonl\n'), { dataDir: '/tmp/x' })
    expect(config.audit.path).toBe('/var/log/audit.jsonl')
  })

  it('reject invalid port', () => {
    const error = catchConfigError(() => parse(oneVolume(), { nfsPort: 70000 }))
    expect(error.field).toBe('nfs.port')
    expect(error.source).toBe('command line')
    expect(error.message.startsWith('command line: nfs.port: 70000 is out of range')).toBe(true)
  })

  it('reject invalid bind', () => {
    const error = catchConfigError(() => parse(oneVolume(), { nfsBind: 'localhost' }))
    expect(error.field).toBe('nfs.bind')
    expect(error.message).toContain('"localhost" is not an IP address')
  })

  it('reject empty data dir', () => {
    const error = catchConfigError(() => parse(oneVolume(), { dataDir: '' }))
    expect(error.field).toBe('node.data_dir')
    expect(error.source).toBe('command line')
  })

  it('still validate the file', () => {
    expectConfigError(oneVolume({}, 'nfs:\n  port: 99999\n'), 'nfs.port', '99999')
    const error = catchConfigError(() => parse(oneVolume({}, 'nfs:\n  port: 99999\n'), { nfsPort: 1 }))
    expect(error.source).toBe(source)
  })
})

describe('defaults object', () => {
  it('matches documented values', () => {
    expect(defaults.nfsPort).toBe(2049)
    expect(defaults.maxRecordBytes).toBe(4_259_840)
  })
})
