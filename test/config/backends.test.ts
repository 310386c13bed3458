import { describe, expect, it } from 'vitest'

import { catchConfigError, expectConfigError, oneVolume, parse } from './helpers.js'

const field = (key: string) => `volumes[0].${key}`

describe('local config', () => {
  it('accepts absent config', () => {
    expect(parse(oneVolume()).volumes[0].config).toEqual({})
  })

  it('accepts empty config', () => {
    expect(parse(oneVolume({ config: '{}' })).volumes[0].config).toEqual({})
  })

  it('rejects any key', () => {
    expectConfigError(oneVolume({ config: '{path: /srv/data}' }), field('config.path'), 'local volumes take no config keys', '"path"')
  })

  it('rejects a list', () => {
    expectConfigError(oneVolume({ config: '[a]' }), field('config'), 'expected a map of keys and values, got a list')
  })
})

describe('hostPath config', () => {
  const hostPath = (config: string | null) => oneVolume({ type: 'hostPath', config })

  it('reads path', () => {
    expect(parse(hostPath('{path: /mnt/fast-nvme/llama-weights}')).volumes[0].config).toEqual({ path: '/mnt/fast-nvme/llama-weights' })
  })

  it('rejects missing config', () => {
    expectConfigError(hostPath(null), field('config.path'), 'missing', 'hostPath volumes need config.path')
  })

  it('rejects missing path', () => {
    expectConfigError(hostPath('{}'), field('config.path'), 'missing')
  })

  const badPaths: Array<[string, string]> = [
    ['data/weights', 'is not an absolute path'],
    ['/mnt/../etc', 'contains a "." or ".." segment'],
    ['/mnt/./data', 'contains a "." or ".." segment'],
    ['/mnt//data', 'empty segment'],
    ['/mnt/data/', 'trailing slash'],
    ['/', 'whole host file system']
  ]
  it.each(badPaths)('rejects path %s', (path, fragment) => {
    expectConfigError(hostPath(`{path: "${path}"}`), field('config.path'), `"${path}"`, fragment)
  })

  it('rejects numeric path', () => {
    expectConfigError(hostPath('{path: 5}'), field('config.path'), 'got the number 5')
  })

  it('rejects unknown key', () => {
    expectConfigError(hostPath('{path: /srv, readonly: true}'), field('config.readonly'), 'unknown key "readonly"', 'the known keys are path')
  })
})

describe('seaweedfs config', () => {
  const seaweed = (config: string | null) => oneVolume({ type: 'seaweedfs', config })

  it('defaults path from name', () => {
    expect(parse(seaweed(null)).volumes[0].config).toEqual({ path: '/volumes/data' })
  })

  it('reads every key', () => {
    const text = seaweed('{filer_url: "http://127.0.0.1:8888", path: /teams/a, collection: agents, replication: "001"}')
    expect(parse(text).volumes[0].config).toEqual({
      filer_url: 'http://127.0.0.1:8888',
      path: '/teams/a',
      collection: 'agents',
      replication: '001'
    })
  })

  it('accepts https filer', () => {
    expect(parse(seaweed('{filer_url: "https://filer.example.internal"}')).volumes[0].config.filer_url).toBe('https://filer.example.internal')
  })

  it.each(['ftp://filer:21', 'filer:8888', 'not a url', 'http://'])('rejects filer_url %s', (url) => {
    expectConfigError(seaweed(`{filer_url: "${url}"}`), field('config.filer_url'), `"${url}"`, 'not an http or https URL')
  })

  it('rejects relative path', () => {
    expectConfigError(seaweed('{path: volumes/data}'), field('config.path'), '"volumes/data"', 'not an absolute path')
  })

  it.each(['"01"', '"abc"', '"0001"'])('rejects replication %s', (replication) => {
    expectConfigError(seaweed(`{replication: ${replication}}`), field('config.replication'), replication, 'three digits')
  })

  it('rejects unquoted replication', () => {
    expectConfigError(seaweed('{replication: 001}'), field('config.replication'), 'got the number 1', 'put the value in quotes')
  })

  it('rejects empty collection', () => {
    expectConfigError(seaweed('{collection: ""}'), field('config.collection'), 'empty string')
  })

  it('takes the node filer when the volume names none', () => {
    const text = oneVolume({ type: 'seaweedfs' }, 'seaweedfs: {filer_url: "http://127.0.0.1:8888"}\n')
    expect(parse(text).volumes[0].config.filer_url).toBe('http://127.0.0.1:8888')
  })

  it('keeps the volume filer over the node filer', () => {
    const text = oneVolume({ type: 'seaweedfs', config: '{filer_url: "http://127.0.0.1:9999"}' }, 'seaweedfs: {filer_url: "http://127.0.0.1:8888"}\n')
    expect(parse(text).volumes[0].config.filer_url).toBe('http://127.0.0.1:9999')
  })

  it('rejects a filer URL with credentials without showing them', () => {
    const error = expectConfigError(seaweed('{filer_url: "http://u:FilerPass-31@127.0.0.1:8888"}'), field('config.filer_url'), 'user name or password')
    expect(error.message).not.toContain('FilerPass-31')
  })

  it.each(['http://169.254.169.254:8888', 'http://[::ffff:169.254.169.254]:8888'])('rejects the metadata filer %s', (url) => {
    expectConfigError(seaweed(`{filer_url: "${url}"}`), field('config.filer_url'), 'metadata service')
  })

  it.each(['http://admin:Hidden-77@127.0.0.1:470200', 'ftp://admin:Hidden-77@127.0.0.1', 'http://admin:Hidden-77@127.0.0.1:8888\\t'])('hides the password of the unusable filer %s', (url) => {
    const error = catchConfigError(() => parse(seaweed(`{filer_url: "${url}"}`)))
    expect(error.field).toBe(field('config.filer_url'))
    expect(error.message).not.toContain('Hidden-77')
  })

  it('rejects a node filer that is not a URL', () => {
    expectConfigError(oneVolume({ type: 'seaweedfs' }, 'seaweedfs: {filer_url: "filer:8888"}\n'), 'seaweedfs.filer_url', '"filer:8888"', 'not an http or https URL')
  })

  it('rejects an unknown key of the node section', () => {
    expectConfigError(oneVolume({ type: 'seaweedfs' }, 'seaweedfs: {filer: "http://127.0.0.1:8888"}\n'), 'seaweedfs.filer', 'unknown key "filer"')
  })

  it('rejects unknown key', () => {
    expectConfigError(seaweed('{bucket: x}'), field('config.bucket'), '"bucket"', 'filer_url, path, collection, replication')
  })
})

describe('opendal config', () => {
  const opendal = (config: string | null, provider = 's3') => oneVolume({ type: 'opendal', provider, config })

  it('keeps references unresolved', () => {
    const vault = 'secrets: {vault: {address: "https://bao.internal:8200", token: env:VAULT_TOKEN}}\n'
    const text = oneVolume({ type: 'opendal', provider: 's3', config: '{bucket: b, access_key_id: "secret:aws/reader/access-key", region: "env:AWS_REGION"}' }, vault)
    expect(parse(text).volumes[0].config).toEqual({
      bucket: 'b',
      access_key_id: 'secret:aws/reader/access-key',
      region: 'env:AWS_REGION'
    })
  })

  it('accepts an empty string value', () => {
    expect(parse(opendal('{bucket: b, root: ""}')).volumes[0].config).toEqual({ bucket: 'b', root: '' })
  })

  it('rejects an option the service does not take', () => {
    expectConfigError(opendal('{bucket: b, disable_ec2_metdata: "true"}'), field('config.disable_ec2_metdata'), 'the s3 service has no option "disable_ec2_metdata"', 'did you mean "disable_ec2_metadata"?')
  })

  it('rejects an option of another service', () => {
    expectConfigError(opendal('{bucket: b, disable_vm_metadata: "true"}'), field('config.disable_vm_metadata'), 'has no option')
  })

  it.each([
    ['s3', '{region: us-east-1}', 'bucket'],
    ['gcs', '{}', 'bucket'],
    ['azblob', '{container: c}', 'endpoint'],
    ['webdav', '{}', 'endpoint'],
    ['fs', '{}', 'root']
  ])('requires the options %s needs', (provider, config, key) => {
    expectConfigError(opendal(config, provider), field(`config.${key}`), 'missing', `${provider} volumes need ${key}`)
  })

  it('requires an azblob key or token', () => {
    expectConfigError(opendal('{container: c, endpoint: "http://127.0.0.1:10000/a"}', 'azblob'), field('config'), 'account_key or sas_token', 'Azure metadata service')
  })

  it.each([
    ['secret_key', 'secret_access_key'],
    ['aws_access_key_id', 'access_key_id'],
    ['user', 'username'],
    ['pass', 'password']
  ])('suggests the option for %s', (key, meant) => {
    const provider = key === 'user' || key === 'pass' ? 'webdav' : 's3'
    const base = provider === 'webdav' ? 'endpoint: "http://127.0.0.1:8080"' : 'bucket: b'
    expectConfigError(opendal(`{${base}, ${key}: x}`, provider), field(`config.${key}`), `did you mean "${meant}"?`)
  })

  it('rejects atomic_write_dir', () => {
    expectConfigError(opendal('{root: /srv/objects, atomic_write_dir: /srv/tmp}', 'fs'), field('config.atomic_write_dir'), 'has no option')
  })

  it.each(['http://admin:Hidden-77@127.0.0.1:470200', 'ftp://admin:Hidden-77@127.0.0.1', 'admin:Hidden-77@127.0.0.1'])('hides the password of the unusable endpoint %s', (endpoint) => {
    const error = expectConfigError(opendal(`{bucket: b, endpoint: "${endpoint}"}`), field('config.endpoint'), 'not an http or https URL')
    expect(error.message).not.toContain('Hidden-77')
  })

  it('rejects a flag that is not true or false', () => {
    expectConfigError(opendal('{bucket: b, disable_config_load: "yes"}'), field('config.disable_config_load'), '"yes" is not a flag', '"true" or "false"')
  })

  it('rejects a count that is not a positive integer', () => {
    expectConfigError(opendal('{bucket: b, batch_max_operations: "-3"}'), field('config.batch_max_operations'), '"-3" is not a count')
  })

  it('rejects a relative fs root', () => {
    expectConfigError(opendal('{root: data/objects}', 'fs'), field('config.root'), '"data/objects" is not an absolute path')
  })

  it.each(['ftp://127.0.0.1/', 'not a url'])('rejects the endpoint %s', (endpoint) => {
    expectConfigError(opendal(`{bucket: b, endpoint: "${endpoint}"}`), field('config.endpoint'), 'is not an http or https URL')
  })

  it.each([
    'http://169.254.169.254/latest',
    'http://metadata.google.internal/',
    'http://[fd00:ec2::254]/',
    'http://[fe80::1]:80/',
    'http://[::ffff:169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[::169.254.169.254]/',
    'http://2852039166/',
    'http://0xa9.0xfe.0xa9.0xfe/',
    'http://100.100.100.200/',
    'http://192.0.0.192/',
    'http://[64:ff9b:1::a9fe:a9fe]/',
    'http://[::ffff:0:a9fe:a9fe]/',
    'http://[2002:a9fe:a9fe::]/',
    'http://instance-data.ec2.internal/'
  ])('rejects the metadata endpoint %s', (endpoint) => {
    expectConfigError(opendal(`{bucket: b, endpoint: "${endpoint}"}`), field('config.endpoint'), 'metadata service or a link-local address')
  })

  it('rejects credentials inside the endpoint without showing them', () => {
    const error = expectConfigError(opendal('{endpoint: "http://alice:hunter22@127.0.0.1:8080/"}', 'webdav'), field('config.endpoint'), 'user name or password')
    expect(error.message).not.toContain('hunter22')
  })

  it('rejects an empty credential', () => {
    expectConfigError(opendal('{bucket: b, secret_access_key: ""}'), field('config.secret_access_key'), 'the value is empty')
  })

  it('checks a reference only when it resolves', () => {
    expect(parse(opendal('{bucket: b, endpoint: "env:S3_ENDPOINT"}')).volumes[0].config.endpoint).toBe('env:S3_ENDPOINT')
  })

  it('rejects a number without showing it', () => {
    const error = expectConfigError(opendal('{bucket: b, secret_access_key: 123456789}'), field('config.secret_access_key'), 'expected a string, got a number')
    expect(error.message).not.toContain('123456789')
  })

  it('rejects a map value', () => {
    expectConfigError(opendal('{bucket: b, session_token: {a: b}}'), field('config.session_token'), 'expected a string, got a map')
  })

  it('rejects an empty value', () => {
    expectConfigError(opendal('{bucket: }'), field('config.bucket'), 'expected a string, got an empty value')
  })

  it.each(['secret:', 'secret:aws', 'secret:aws/', 'secret:/key'])('rejects reference %s', (reference) => {
    expectConfigError(opendal(`{bucket: b, access_key_id: "${reference}"}`), field('config.access_key_id'), `"${reference}"`, 'secret:<path>/<key>')
  })

  it.each(['env:', 'env:1ABC', 'env:AWS-KEY'])('rejects reference %s', (reference) => {
    expectConfigError(opendal(`{bucket: b, access_key_id: "${reference}"}`), field('config.access_key_id'), `"${reference}"`, 'env:NAME')
  })

  it('rejects config as a list', () => {
    expectConfigError(opendal('[bucket]'), field('config'), 'got a list')
  })
})

describe('seal config', () => {
  const seal = (config: string | null) => oneVolume({ type: 'seal', config })

  it('reads both keys', () => {
    expect(parse(seal('{node_id: node-b, remote_volume_id: vol-1}')).volumes[0].config).toEqual({ node_id: 'node-b', remote_volume_id: 'vol-1' })
  })

  it('rejects missing config', () => {
    expectConfigError(seal(null), field('config.node_id'), 'missing')
  })

  it('rejects missing remote_volume_id', () => {
    expectConfigError(seal('{node_id: node-b}'), field('config.remote_volume_id'), 'missing')
  })

  it('rejects empty node_id', () => {
    expectConfigError(seal('{node_id: "", remote_volume_id: v}'), field('config.node_id'), 'empty string')
  })

  it('rejects numeric id', () => {
    expectConfigError(seal('{node_id: 42, remote_volume_id: v}'), field('config.node_id'), 'got the number 42', 'put the value in quotes')
  })

  it('rejects unknown key', () => {
    expectConfigError(seal('{node_id: a, remote_volume_id: b, remote_node: c}'), field('config.remote_node'), '"remote_node"', 'node_id, remote_volume_id')
  })
})
