// Runs aegis-node processes for mesh tests: each node is `aegis-node serve` in its own process,
// on loopback, with its own data directory, and the test reads its JSON log to learn its ports.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadOrCreateIdentity } from '../../src/mesh/identity.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js')

export interface NodeProcess {
  name: string
  dataDir: string
  peerId: string
  nfsPort: number
  meshPort: number
  auditPath: string
  process: ChildProcess
  /** Every log line so far, for failure messages. */
  log: string[]
  url(volume: string, pathInVolume?: string): string
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  auditEvents(): Array<Record<string, unknown>>
  /** Resolves with the first log line for which `match` is true (already printed or to come). */
  waitForLog(match: (entry: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
}

/** Returns one `type: seal` entry of a `volumes:` list, mounted at /workspace/<name>. */
export function sealVolumeYaml(name: string, nodeId: string, remoteVolume: string, accessMode: 'read-only' | 'read-write' = 'read-write'): string {
  return `  - name: ${name}\n    type: seal\n    config:\n      node_id: ${nodeId}\n      remote_volume_id: ${remoteVolume}\n    mount_path: /workspace/${name}\n    access_mode: ${accessMode}\n`
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Creates a node's identity ahead of its first start, so that other nodes can trust its id. */
export async function peerIdFor(dataDir: string): Promise<string> {
  return (await loadOrCreateIdentity(dataDir)).peerId
}

export interface NodeProcessOptions {
  name: string
  dataDir: string
  meshPort: number
  /** YAML after the node and nfs sections: volumes and the rest of mesh. */
  yaml: string
  env?: Record<string, string>
}

/** Starts `aegis-node serve` and resolves once NFS listens. */
export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const configPath = path.join(options.dataDir, 'node.yaml')
  fs.writeFileSync(configPath, `node:\n  name: ${options.name}\n  data_dir: ${options.dataDir}\nnfs:\n  bind: 127.0.0.1\n  port: 0\n${options.yaml}`)
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath, '--log-level', 'debug'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env }
  })
  const log: string[] = []
  const entries: Array<Record<string, unknown>> = []
  const watchers: Array<{ match: (entry: Record<string, unknown>) => boolean; resolve: (entry: Record<string, unknown>) => void }> = []
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8')
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      log.push(line)
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line) as Record<string, unknown>
      } catch {
        continue
      }
      entries.push(entry)
      for (const watcher of [...watchers]) {
        if (watcher.match(entry)) {
          watchers.splice(watchers.indexOf(watcher), 1)
          watcher.resolve(entry)
        }
      }
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => log.push(`stderr: ${chunk.toString('utf8')}`))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))

  const waitForLog = (match: (entry: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> => {
    const found = entries.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${options.name}: no matching log line within ${timeoutMs} ms; log:\n${log.slice(-40).join('\n')}`)), timeoutMs)
      watchers.push({
        match,
        resolve: (entry) => {
          clearTimeout(timer)
          resolve(entry)
        }
      })
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`${options.name} exited with code ${code}; log:\n${log.slice(-40).join('\n')}`))
      })
    })
  }

  const listening = await waitForLog((entry) => typeof entry.port === 'number' && String(entry.msg).startsWith('NFS'))
  const auditPath = path.join(options.dataDir, 'audit.jsonl')
  return {
    name: options.name,
    dataDir: options.dataDir,
    peerId: await peerIdFor(options.dataDir),
    nfsPort: listening.port as number,
    meshPort: options.meshPort,
    auditPath,
    process: child,
    log,
    url: (volume, pathInVolume = '') => `nfs://127.0.0.1/${volume}${pathInVolume}?nfsport=${listening.port as number}&mountport=${listening.port as number}`,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
    auditEvents: () =>
      fs.existsSync(auditPath)
        ? fs
            .readFileSync(auditPath, 'utf8')
            .split('\n')
            .filter((line) => line.length > 0)
            .map((line) => JSON.parse(line) as Record<string, unknown>)
        : [],
    waitForLog
  }
}

/** Polls `read` until `check` passes or the time is up; returns the last value read. */
export async function eventually<T>(read: () => T, check: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let value = read()
  while (!check(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    value = read()
  }
  return value
}
