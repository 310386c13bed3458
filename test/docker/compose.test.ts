// No Docker engine runs on the test machines, so the compose cluster is checked here: every file
// the services mount or the image copies exists, each node's configuration loads, and the
// policies validate against the schema.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { parseConfigText } from '../../src/config/index.js'
import { checkPolicies } from '../../src/mesh/policy.js'
import { makeTempDir } from '../helpers/node.js'
import { peerIdFor } from '../helpers/mesh-cluster.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const clusterDir = path.join(root, 'docker', 'cluster')

interface ComposeService {
  image?: string
  build?: { context: string; dockerfile: string }
  volumes?: string[]
  depends_on?: string[]
  ports?: string[]
}

const compose = parse(fs.readFileSync(path.join(clusterDir, 'compose.yaml'), 'utf8')) as {
  services: Record<string, ComposeService>
  volumes: Record<string, unknown>
}

describe('docker compose cluster', () => {
  it('mounts only files that exist and volumes it declares', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const mount of service.volumes ?? []) {
        const source = mount.split(':')[0]
        if (source.startsWith('.')) expect(fs.existsSync(path.join(clusterDir, source)), `${name}: ${source}`).toBe(true)
        else expect(Object.keys(compose.volumes), `${name}: ${source}`).toContain(source)
      }
      for (const dependency of service.depends_on ?? []) expect(Object.keys(compose.services), name).toContain(dependency)
      // Published ports stay on the host's loopback.
      for (const port of service.ports ?? []) expect(port.startsWith('127.0.0.1:'), `${name}: ${port}`).toBe(true)
    }
  })

  it('builds from files that exist', () => {
    const dockerfile = fs.readFileSync(path.join(root, 'docker', 'Dockerfile'), 'utf8')
    for (const service of Object.values(compose.services)) {
      if (service.build === undefined) continue
      expect(path.resolve(clusterDir, service.build.context)).toBe(root)
      expect(fs.existsSync(path.join(root, service.build.dockerfile))).toBe(true)
    }
    const copied = [...dockerfile.matchAll(/^COPY (.+) \S+$/gm)].flatMap((match) => match[1].split(' '))
    expect(copied.length).toBeGreaterThan(0)
    for (const source of copied) expect(fs.existsSync(path.join(root, source)), source).toBe(true)
  })

  it('loads each node configuration', async () => {
    const peerB = await peerIdFor(makeTempDir())
    for (const file of ['node-a.yaml', 'node-b.yaml']) {
      const text = fs.readFileSync(path.join(clusterDir, file), 'utf8').replace('NODE_B_PEER_ID', peerB)
      const config = parseConfigText(text, { source: file, baseDir: clusterDir })
      expect(config.mesh, file).not.toBeNull()
    }
  })

  it('refuses node-a until the peer id is filled in', () => {
    const text = fs.readFileSync(path.join(clusterDir, 'node-a.yaml'), 'utf8')
    expect(() => parseConfigText(text, { source: 'node-a.yaml', baseDir: clusterDir })).toThrow(/NODE_B_PEER_ID.*aegis-node id/)
  })

  it('ships policies that validate', () => {
    expect(Object.keys(checkPolicies(path.join(clusterDir, 'policies')))).toEqual(['cluster-read'])
  })
})
