import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { embeddedDefaultConfig, loadConfigFile } from '../../src/config/index.js'
import type { NodeConfig } from '../../src/config/index.js'
import { catchConfigError, parse, source } from './helpers.js'

const manifestVolumes = `volumes:
  - name: shared-data
    type: seaweedfs
    storage_class: persistent
    mount_path: /workspace/shared-data
    access_mode: read-write
  - name: datasets
    type: opendal
    provider: s3
    config:
      bucket: my-ml-datasets
      endpoint: "https://s3.us-east-1.amazonaws.com"
      access_key_id: "secret:aws/s3-reader/access-key"
      secret_access_key: "secret:aws/s3-reader/secret-key"
    storage_class: persistent
    mount_path: /workspace/datasets
    access_mode: read-only
  - name: local-weights
    type: hostPath
    config:
      path: /mnt/fast-nvme/llama-weights
    storage_class: persistent
    mount_path: /workspace/weights
    access_mode: read-only
  - name: remote-pipeline-data
    type: seal
    config:
      node_id: "node-b-uuid-1234"
      remote_volume_id: "vol-9876-abc"
    storage_class: persistent
    mount_path: /workspace/pipeline/input
    access_mode: read-only
secrets:
  vault:
    address: https://bao.internal:8200
    token: env:VAULT_TOKEN
`

const nodeSection = `node:
  name: storage-node-1
  data_dir: ./state
nfs:
  bind: 0.0.0.0
  port: 2049
  allowed_clients: [172.17.0.0/16, 127.0.0.1]
  advertise_host: storage-node-1.internal
audit:
  max_pending_events: 1024
`

function checkManifestVolumes(config: NodeConfig): void {
  expect(config.volumes.map((volume) => volume.name)).toEqual(['shared-data', 'datasets', 'local-weights', 'remote-pipeline-data'])
  const [shared, datasets, weights, remote] = config.volumes

  expect(shared.type).toBe('seaweedfs')
  expect(shared.accessMode).toBe('read-write')
  expect(shared.config).toEqual({ path: '/volumes/shared-data' })

  expect(datasets.provider).toBe('s3')
  expect(datasets.accessMode).toBe('read-only')
  expect(datasets.config).toEqual({
    bucket: 'my-ml-datasets',
    endpoint: 'https://s3.us-east-1.amazonaws.com',
    access_key_id: 'secret:aws/s3-reader/access-key',
    secret_access_key: 'secret:aws/s3-reader/secret-key'
  })

  expect(weights.type).toBe('hostPath')
  expect(weights.mountPath).toBe('/workspace/weights')
  expect(weights.config).toEqual({ path: '/mnt/fast-nvme/llama-weights' })

  expect(remote.type).toBe('seal')
  expect(remote.mountPath).toBe('/workspace/pipeline/input')
  expect(remote.config).toEqual({ node_id: 'node-b-uuid-1234', remote_volume_id: 'vol-9876-abc' })

  for (const volume of config.volumes) {
    expect(volume.storageClass).toBe('persistent')
    expect(volume.sizeLimitBytes).toBeNull()
    expect(volume.owner).toEqual({ uid: 1000, gid: 1000 })
  }
}

describe('manifest examples', () => {
  it('parse without node section', () => {
    checkManifestVolumes(parse(manifestVolumes))
  })

  it('parse with node section', () => {
    const config = parse(nodeSection + manifestVolumes)
    checkManifestVolumes(config)
    expect(config.nodeName).toBe('storage-node-1')
    expect(config.dataDir).toBe('/etc/aegis/state')
    expect(config.nfs.advertiseHost).toBe('storage-node-1.internal')
    expect(config.audit.maxPendingEvents).toBe(1024)
    expect(config.volumes[0].allowedClients).toEqual(['172.17.0.0/16', '127.0.0.1/32'])
  })
})

describe('YAML syntax errors', () => {
  const cases: Array<[string, string, number, string]> = [
    ['unclosed flow list', 'volumes: [\n  {name: a\n', 3, 'invalid YAML at line'],
    ['duplicate key', 'nfs:\n  port: 1\n  port: 2\n', 3, 'the key in "port: 2" appears twice'],
    ['two documents', 'nfs: {}\n---\nvolumes: []\n', 2, 'more than one YAML document'],
    ['bad indentation', 'nfs:\n  port: 1\n bind: x\n', 3, 'invalid YAML at line 3'],
    ['unknown tag', 'nfs:\n  port: !port 2049\n', 2, 'Unresolved tag: !port'],
    ['tab indentation', 'nfs:\n\tport: 1\n', 2, 'invalid YAML at line 2']
  ]
  it.each(cases)('%s', (_, text, line, fragment) => {
    const error = catchConfigError(() => parse(text))
    expect(error.field).toBe('')
    expect(error.line).toBe(line)
    expect(error.message.startsWith(`${source}: invalid YAML at line ${line}, column `)).toBe(true)
    expect(error.message).toContain(fragment)
  })

  it('unresolved alias', () => {
    const error = catchConfigError(() => parse('volumes: *missing\n'))
    expect(error.message).toContain('invalid YAML')
    expect(error.message).toContain('missing')
  })

  it('collection as key', () => {
    const error = catchConfigError(() => parse('nfs:\n  ? [port]\n  : 1\n'))
    expect(error.line).toBe(2)
    expect(error.message).toContain('a key is a list or a map')
  })

  it('resolves aliases', () => {
    const text = `nfs:
  allowed_clients: &clients [10.0.0.0/8]
volumes:
  - name: data
    type: local
    mount_path: /workspace/data
    access_mode: read-write
    allowed_clients: *clients
`
    expect(parse(text).volumes[0].allowedClients).toEqual(['10.0.0.0/8'])
  })

  it('rejects merge keys', () => {
    const text = `volumes:
  - &base
    name: a
    type: local
    mount_path: /workspace/a
    access_mode: read-only
  - <<: *base
    name: b
`
    const error = catchConfigError(() => parse(text))
    expect(error.field).toBe('volumes[1]["<<"]')
  })
})

describe('loadConfigFile', () => {
  let directory = ''

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'aegis-config-'))
  })

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true })
  })

  it('loads the manifest', async () => {
    const path = join(directory, 'node.yaml')
    await writeFile(path, nodeSection + manifestVolumes)
    const config = await loadConfigFile(path)
    checkManifestVolumes(config)
    expect(config.source).toBe(path)
    expect(config.dataDir).toBe(join(directory, 'state'))
    expect(config.audit.path).toBe(join(directory, 'state', 'audit.jsonl'))
  })

  it('defaults data dir beside the file', async () => {
    const path = join(directory, 'plain.yaml')
    await writeFile(path, manifestVolumes)
    expect((await loadConfigFile(path)).dataDir).toBe(join(directory, '.aegis'))
  })

  it('applies overrides', async () => {
    const path = join(directory, 'override.yaml')
    await writeFile(path, nodeSection + manifestVolumes)
    const config = await loadConfigFile(path, { nfsPort: 0, nfsBind: '127.0.0.1', dataDir: '/tmp/aegis-override' })
    expect(config.nfs.port).toBe(0)
    expect(config.nfs.bind).toBe('127.0.0.1')
    expect(config.dataDir).toBe('/tmp/aegis-override')
  })

  it('accepts a byte order mark', async () => {
    const path = join(directory, 'bom.yaml')
    await writeFile(path, '\ufeff' + manifestVolumes)
    expect((await loadConfigFile(path)).volumes).toHaveLength(4)
  })

  it('rejects a missing file', async () => {
    const path = join(directory, 'absent.yaml')
    const error = await loadConfigFile(path).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ name: 'ConfigError', field: '', source: path })
    expect((error as Error).message).toBe(`${path}: config file not found; check the path`)
  })

  it('rejects a directory', async () => {
    const path = join(directory, 'config.d')
    await mkdir(path)
    const error = await loadConfigFile(path).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ name: 'ConfigError', source: path })
    expect((error as Error).message).toContain('is a directory')
  })

  it.skipIf(process.getuid?.() === 0)('rejects an unreadable file', async () => {
    const path = join(directory, 'secret.yaml')
    await writeFile(path, manifestVolumes)
    await chmod(path, 0o000)
    const error = await loadConfigFile(path).catch((caught: unknown) => caught)
    expect((error as Error).message).toContain(`${path}: permission denied`)
  })

  it('names path and line', async () => {
    const path = join(directory, 'broken.yaml')
    await writeFile(path, 'volumes:\n  - name: a\n    mount_path: /workspace/a\n   access_mode: read-write\n')
    const error = await loadConfigFile(path).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ name: 'ConfigError', line: 4 })
    expect((error as Error).message.startsWith(`${path}: invalid YAML at line 4`)).toBe(true)
  })

  it('names path on invalid value', async () => {
    const path = join(directory, 'invalid.yaml')
    await writeFile(path, manifestVolumes.replace('access_mode: read-write', 'access_mode: READ-WRITE'))
    const error = await loadConfigFile(path).catch((caught: unknown) => caught)
    expect(error).toMatchObject({ name: 'ConfigError', field: 'volumes[0].access_mode' })
    expect((error as Error).message.startsWith(`${path}: volumes[0].access_mode: "READ-WRITE"`)).toBe(true)
  })
})

describe('embeddedDefaultConfig', () => {
  it('has one scratch volume', () => {
    const config = embeddedDefaultConfig()
    expect(config.source).toBe('embedded default')
    expect(config.dataDir).toBe(resolve('.aegis'))
    expect(config.nfs.bind).toBe('127.0.0.1')
    expect(config.nfs.port).toBe(2049)
    expect(config.volumes).toEqual([
      {
        name: 'scratch',
        type: 'local',
        storageClass: 'ephemeral',
        mountPath: '/workspace/scratch',
        accessMode: 'read-write',
        sizeLimitBytes: 1024 ** 3,
        provider: null,
        config: {},
        owner: { uid: 1000, gid: 1000 },
        allowedClients: ['127.0.0.0/8', '::1/128']
      }
    ])
  })

  it('applies overrides', () => {
    const config = embeddedDefaultConfig({ dataDir: '/tmp/aegis-default', nfsPort: 0, nfsBind: '::1' })
    expect(config.dataDir).toBe('/tmp/aegis-default')
    expect(config.audit.path).toBe('/tmp/aegis-default/audit.jsonl')
    expect(config.nfs.port).toBe(0)
    expect(config.nfs.bind).toBe('::1')
  })

  it('validates overrides', () => {
    const error = catchConfigError(() => embeddedDefaultConfig({ nfsPort: -1 }))
    expect(error.message).toBe('command line: nfs.port: -1 is out of range; use an integer from 1 to 65535, or 0 for a free port')
  })
})
