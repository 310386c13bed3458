import { describe, expect, it } from 'vitest'

import { catchConfigError, expectConfigError, oneVolume, parse, source } from './helpers.js'

const field = (key: string) => `volumes[0].${key}`

describe('volume name', () => {
  it.each(['a', 'data', 'a.b_c-d', '0day', 'x'.repeat(63)])('accepts %s', (name) => {
    expect(parse(oneVolume({ name })).volumes[0].name).toBe(name)
  })

  it.each(['My-Data', '-data', 'data-', '.data', 'data_', 'da ta', 'dätä', 'data/sub', 'x'.repeat(64)])('rejects %s', (name) => {
    expectConfigError(oneVolume({ name: JSON.stringify(name) }), field('name'), JSON.stringify(name), 'not a valid volume name')
  })

  it('rejects missing name', () => {
    expectConfigError(oneVolume({ name: null }), field('name'), 'missing')
  })

  it('rejects numeric name', () => {
    expectConfigError(oneVolume({ name: '7' }), field('name'), 'got the number 7')
  })

  it('rejects duplicates naming both', () => {
    const text = `volumes:
  - name: data
    type: local
    mount_path: /workspace/one
    access_mode: read-write
  - name: other
    type: local
    mount_path: /workspace/two
    access_mode: read-write
  - name: data
    type: local
    mount_path: /workspace/three
    access_mode: read-only
`
    expectConfigError(text, 'volumes[2].name', '"data"', 'volumes[0]', 'volumes[2]', 'unique')
  })
})

describe('volume type', () => {
  it.each(['local', 'seaweedfs'])('accepts %s', (type) => {
    expect(parse(oneVolume({ type })).volumes[0].type).toBe(type)
  })

  it('defaults to seaweedfs', () => {
    const volume = parse(oneVolume({ type: null })).volumes[0]
    expect(volume.type).toBe('seaweedfs')
    expect(volume.config).toEqual({ path: '/volumes/data' })
  })

  it('rejects hostpath with hint', () => {
    expectConfigError(oneVolume({ type: 'hostpath' }), field('type'), '"hostpath"', 'local, hostPath, seaweedfs, opendal, seal', 'did you mean hostPath?')
  })

  it('rejects s3', () => {
    const error = expectConfigError(oneVolume({ type: 's3' }), field('type'), '"s3" is not a valid volume type', 'local, hostPath')
    expect(error.message).not.toContain('did you mean')
  })

  it('rejects a list', () => {
    expectConfigError(oneVolume({ type: '[local]' }), field('type'), 'got a list')
  })
})

describe('storage_class', () => {
  it('defaults to persistent', () => {
    expect(parse(oneVolume()).volumes[0].storageClass).toBe('persistent')
  })

  it('accepts ephemeral', () => {
    expect(parse(oneVolume({ storage_class: 'ephemeral' })).volumes[0].storageClass).toBe('ephemeral')
  })

  it.each(['Persistent', 'temp', 'durable'])('rejects %s', (value) => {
    expectConfigError(oneVolume({ storage_class: value }), field('storage_class'), `"${value}"`, 'ephemeral, persistent')
  })
})

describe('access_mode', () => {
  it.each(['read-only', 'read-write'])('accepts %s', (mode) => {
    expect(parse(oneVolume({ access_mode: mode })).volumes[0].accessMode).toBe(mode)
  })

  it('rejects missing', () => {
    expectConfigError(oneVolume({ access_mode: null }), field('access_mode'), 'missing', 'read-only or read-write')
  })

  it('rejects empty value', () => {
    expectConfigError(oneVolume({ access_mode: '' }), field('access_mode'), 'missing', 'read-only or read-write')
  })

  const wrong: Array<[string, string]> = [
    ['READ-ONLY', 'did you mean read-only?'],
    ['Read-Write', 'did you mean read-write?'],
    ['ro', 'did you mean read-only?'],
    ['readonly', 'did you mean read-only?'],
    ['read_only', 'did you mean read-only?'],
    ['rw', 'did you mean read-write?'],
    ['ReadWriteOnce', 'read-only or read-write'],
    ['write', 'read-only or read-write']
  ]
  it.each(wrong)('rejects %s', (mode, hint) => {
    expectConfigError(oneVolume({ access_mode: mode }), field('access_mode'), `"${mode}"`, 'read-only or read-write', hint)
  })

  it('rejects a boolean', () => {
    expectConfigError(oneVolume({ access_mode: 'true' }), field('access_mode'), 'got the boolean true', 'read-only or read-write')
  })
})

describe('provider', () => {
  it('rejects provider on local', () => {
    expectConfigError(oneVolume({ provider: 's3' }), field('provider'), '"s3"', 'only used by opendal volumes', 'type local')
  })

  it('rejects missing for opendal', () => {
    expectConfigError(oneVolume({ type: 'opendal' }), field('provider'), 'missing', 's3, gcs, azblob, webdav, fs, memory')
  })

  it.each(['S3', 'minio', 'gdrive'])('rejects %s', (provider) => {
    expectConfigError(oneVolume({ type: 'opendal', provider }), field('provider'), `"${provider}"`, 's3, gcs, azblob, webdav, fs, memory')
  })

  const minimalConfigs: Record<string, Record<string, string>> = {
    s3: { bucket: 'b' },
    gcs: { bucket: 'b' },
    azblob: { container: 'c', endpoint: 'http://127.0.0.1:10000/devstoreaccount1', sas_token: 'env:AZURE_SAS' },
    webdav: { endpoint: 'http://127.0.0.1:8080' },
    fs: { root: '/srv/objects' },
    memory: {}
  }

  it.each(Object.keys(minimalConfigs))('accepts %s', (provider) => {
    const volume = parse(oneVolume({ type: 'opendal', provider, config: JSON.stringify(minimalConfigs[provider]) })).volumes[0]
    expect(volume.provider).toBe(provider)
    expect(volume.config).toEqual(minimalConfigs[provider])
  })

  it('is null for other types', () => {
    expect(parse(oneVolume()).volumes[0].provider).toBeNull()
  })
})

describe('owner', () => {
  it('defaults to 1000:1000', () => {
    expect(parse(oneVolume()).volumes[0].owner).toEqual({ uid: 1000, gid: 1000 })
  })

  it.each([
    ['{uid: 0, gid: 0}', { uid: 0, gid: 0 }],
    ['{uid: 4294967294, gid: 65534}', { uid: 4294967294, gid: 65534 }]
  ])('accepts %s', (owner, expected) => {
    expect(parse(oneVolume({ owner })).volumes[0].owner).toEqual(expected)
  })

  const wrong: Array<[string, string, string]> = [
    ['{uid: 4294967295, gid: 0}', 'owner.uid', '4294967295 is out of range'],
    ['{uid: 0, gid: -1}', 'owner.gid', '-1 is out of range'],
    ['{uid: 1000}', 'owner.gid', 'missing'],
    ['{gid: 1000}', 'owner.uid', 'missing'],
    ['{uid: "1000", gid: 1000}', 'owner.uid', 'got the string "1000"; remove the quotes'],
    ['{uid: 1.5, gid: 1}', 'owner.uid', 'got the number 1.5'],
    ['{uid: 1, gid: 1, user: agent}', 'owner.user', 'unknown key "user"'],
    ['1000', 'owner', 'expected a map of keys and values, got the number 1000'],
    ['"1000:1000"', 'owner', 'got the string "1000:1000"']
  ]
  it.each(wrong)('rejects %s', (owner, key, fragment) => {
    expectConfigError(oneVolume({ owner }), field(key), fragment)
  })
})

describe('allowed_clients', () => {
  it('inherits nfs.allowed_clients', () => {
    const config = parse(oneVolume({}, 'nfs:\n  allowed_clients: [10.1.0.0/16]\n'))
    expect(config.volumes[0].allowedClients).toEqual(['10.1.0.0/16'])
  })

  it('overrides per volume', () => {
    const config = parse(oneVolume({ allowed_clients: '[172.17.0.2, "::1"]' }))
    expect(config.volumes[0].allowedClients).toEqual(['172.17.0.2/32', '::1/128'])
    expect(config.nfs.allowedClients).toEqual(['127.0.0.0/8', '::1/128'])
  })

  it('rejects a bad entry', () => {
    expectConfigError(oneVolume({ allowed_clients: '[127.0.0.1, 10.0.0.0/33]' }), field('allowed_clients[1]'), '"10.0.0.0/33"')
  })

  it('rejects empty list', () => {
    expectConfigError(oneVolume({ allowed_clients: '[]' }), field('allowed_clients'), 'the list is empty')
  })
})

describe('volume keys', () => {
  it('rejects unknown key with hint', () => {
    expectConfigError(oneVolume({ mountPath: '/workspace/x' }), field('mountPath'), 'unknown key "mountPath" in volumes[0]', 'did you mean "mount_path"?')
  })

  it('lists known keys', () => {
    expectConfigError(
      oneVolume({ quota: '1Gi' }),
      field('quota'),
      'name, type, storage_class, mount_path, access_mode, size_limit, provider, config, owner, allowed_clients'
    )
  })

  it('rejects a string item', () => {
    expectConfigError('volumes:\n  - data\n', 'volumes[0]', 'expected a map of keys and values, got the string "data"')
  })

  it('names the failing index', () => {
    const text = `volumes:
  - name: good
    type: local
    mount_path: /workspace/good
    access_mode: read-only
  - name: bad
    type: local
    mount_path: /workspace/bad
    access_mode: rw
`
    const error = catchConfigError(() => parse(text))
    expect(error.field).toBe('volumes[1].access_mode')
    expect(error.message.startsWith(`${source}: volumes[1].access_mode: "rw"`)).toBe(true)
  })
})
