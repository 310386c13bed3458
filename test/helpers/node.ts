// Starts a real aegis-node in the test process, listening on a free loopback port.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { parseConfigText } from '../../src/config/index.js'
import { AegisNode } from '../../src/node.js'

export interface TestNode {
  node: AegisNode
  port: number
  dataDir: string
  auditPath: string
  /** nfs://127.0.0.1/<volume>[/path]?nfsport=P&mountport=P, for libnfs tools. */
  url(volume: string, pathInVolume?: string): string
  /** Stops the node (as SIGTERM would). */
  stop(): Promise<void>
  /** Reads the audit trail written so far (the node flushes it on stop, or call after a short wait). */
  auditEvents(): Array<Record<string, unknown>>
}

export function makeTempDir(prefix = 'aegis-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

/**
 * Starts a node from YAML text. `volumesYaml` is the `volumes:` list (indented as a top-level
 * key's value); the node section, data directory and a free port are filled in.
 */
export async function startTestNode(options: { volumesYaml: string; dataDir?: string; nfsYaml?: string; port?: number }): Promise<TestNode> {
  const dataDir = options.dataDir ?? makeTempDir()
  const text = `node:\n  name: test-node\n  data_dir: ${dataDir}\nnfs:\n  bind: 127.0.0.1\n  port: ${options.port ?? 0}\n${options.nfsYaml ?? ''}volumes:\n${options.volumesYaml}`
  const config = parseConfigText(text, { source: 'test', baseDir: dataDir })
  const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
  const node = new AegisNode(config, logger)
  const address = await node.start()
  const auditPath = config.audit.path
  return {
    node,
    port: address.port,
    dataDir,
    auditPath,
    url: (volume, pathInVolume = '') => `nfs://127.0.0.1/${volume}${pathInVolume}?nfsport=${address.port}&mountport=${address.port}`,
    stop: () => node.stop(),
    auditEvents: () =>
      fs.existsSync(auditPath)
        ? fs
            .readFileSync(auditPath, 'utf8')
            .split('\n')
            .filter((line) => line.length > 0)
            .map((line) => JSON.parse(line) as Record<string, unknown>)
        : []
  }
}

/** Returns a read-write `local` volume entry for startTestNode. */
export function localVolumeYaml(name: string, extra = ''): string {
  return `  - name: ${name}\n    type: local\n    mount_path: /workspace/${name}\n    access_mode: read-write\n${extra}`
}

/** Returns a `hostPath` volume entry for startTestNode. */
export function hostPathVolumeYaml(name: string, hostPath: string, accessMode: 'read-only' | 'read-write', extra = ''): string {
  return `  - name: ${name}\n    type: hostPath\n    config:\n      path: ${hostPath}\n    mount_path: /workspace/${name}\n    access_mode: ${accessMode}\n${extra}`
}
