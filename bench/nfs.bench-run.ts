// NFS throughput and operation rates of aegis-node beside NFS-Ganesha, measured in one run with
// the same libnfs client (test/native/bin/aegis-nfs --bench), on loopback.
//
// Each figure is the median of RUNS runs after one discarded warm-up run. Results go to stdout as a Markdown table and to
// bench/results/nfs.json; docs/benchmarks.md records them with the machine they came from.

import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { startGanesha } from '../test/helpers/ganesha.js'
import { ensureNfsClientBuilt, runNfsBench, type NfsBenchOp, type NfsBenchOptions } from '../test/helpers/nfs-client.js'
import { machine } from './machine.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const FILE_BYTES = 256 * 1024 * 1024

interface Case {
  label: string
  op: NfsBenchOp
  options: NfsBenchOptions
  unit: 'MiB/s' | 'ops/s' | 'entries/s'
}

const CASES: Case[] = [
  { label: 'sequential write, 256 MiB, 1 MiB requests, 4 in flight, COMMIT at end', op: 'write', options: { size: FILE_BYTES, inflight: 4, path: 'bench.dat' }, unit: 'MiB/s' },
  { label: 'sequential read, 256 MiB, 1 MiB requests, 4 in flight', op: 'read', options: { inflight: 4, path: 'bench.dat' }, unit: 'MiB/s' },
  { label: 'GETATTR, 1 in flight', op: 'getattr', options: { inflight: 1, seconds: 3 }, unit: 'ops/s' },
  { label: 'GETATTR, 8 in flight', op: 'getattr', options: { inflight: 8, seconds: 3 }, unit: 'ops/s' },
  { label: 'LOOKUP of 1,000 names, 8 in flight', op: 'lookup', options: { inflight: 8, seconds: 3, files: 1000 }, unit: 'ops/s' },
  { label: 'CREATE of new files, 8 in flight', op: 'create', options: { inflight: 8, seconds: 3 }, unit: 'ops/s' },
  { label: 'READDIRPLUS of 1,000 entries, 4 in flight', op: 'readdirplus', options: { inflight: 4, seconds: 3, entries: 1000 }, unit: 'entries/s' }
]

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function figureOf(result: Awaited<ReturnType<typeof runNfsBench>>, unit: Case['unit']): number {
  if (unit === 'MiB/s') return result.mibPerSecond
  if (unit === 'entries/s') return result.entriesPerSecond ?? 0
  return result.opsPerSecond
}

/** Starts `aegis-node serve` as its own process, as an operator would, and returns its port. */
async function startAegis(dataDir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const config = path.join(dataDir, 'node.yaml')
  fs.writeFileSync(config, `node:\n  data_dir: ${dataDir}\nnfs:\n  port: 0\nvolumes:\n  - name: bench\n    type: local\n    mount_path: /workspace/bench\n    access_mode: read-write\n`)
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'serve', '--config', config, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('aegis-node did not start within 20 s')), 20_000)
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on [^:]+:(\d+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    child.once('exit', (code) => reject(new Error(`aegis-node exited with ${code} before listening`)))
  })
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      })
  }
}

function ganeshaVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'nfs-ganesha'], { encoding: 'utf8' })
  } catch {
    return 'unknown'
  }
}

it('nfs: aegis-node beside NFS-Ganesha', async () => {
  ensureNfsClientBuilt()
  const aegisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-bench-'))
  const ganeshaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ganesha-bench-'))
  const aegis = await startAegis(aegisDir)
  const ganesha = await startGanesha({ exportDir: ganeshaDir })
  const aegisUrl = `nfs://127.0.0.1/bench?nfsport=${aegis.port}&mountport=${aegis.port}`
  const rows: Array<{ label: string; unit: string; aegis: number; ganesha: number; ratio: number }> = []

  try {
    for (const benchCase of CASES) {
      const aegisRuns: number[] = []
      const ganeshaRuns: number[] = []
      // One discarded run each, so that JIT compilation and cold caches do not count.
      await runNfsBench(aegisUrl, benchCase.op, benchCase.options)
      await runNfsBench(ganesha.url(), benchCase.op, benchCase.options)
      for (let run = 0; run < RUNS; run++) {
        // Alternate the servers so that drifts of the machine touch both alike.
        aegisRuns.push(figureOf(await runNfsBench(aegisUrl, benchCase.op, benchCase.options), benchCase.unit))
        ganeshaRuns.push(figureOf(await runNfsBench(ganesha.url(), benchCase.op, benchCase.options), benchCase.unit))
      }
      const row = { label: benchCase.label, unit: benchCase.unit, aegis: median(aegisRuns), ganesha: median(ganeshaRuns), ratio: 0 }
      row.ratio = row.aegis / row.ganesha
      rows.push(row)
      process.stdout.write(`${row.label}: aegis-node ${row.aegis.toFixed(0)} ${row.unit}, NFS-Ganesha ${row.ganesha.toFixed(0)} ${row.unit}, ratio ${row.ratio.toFixed(2)}\n`)
    }
  } finally {
    await aegis.stop()
    await ganesha.stop()
  }

  const info = machine({ ganesha: ganeshaVersion() })
  const table = [
    '| Case | Unit | aegis-node | NFS-Ganesha | aegis-node / Ganesha |',
    '|---|---|---:|---:|---:|',
    ...rows.map((row) => `| ${row.label} | ${row.unit} | ${Math.round(row.aegis).toLocaleString('en-US')} | ${Math.round(row.ganesha).toLocaleString('en-US')} | ${row.ratio.toFixed(2)} |`)
  ].join('\n')
  process.stdout.write(`\nMachine: ${JSON.stringify(info)}\nMedian of ${RUNS} runs each.\n\n${table}\n`)
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true })
  fs.writeFileSync(path.join(root, 'bench/results/nfs.json'), JSON.stringify({ date: new Date().toISOString(), machine: info, runs: RUNS, rows }, null, 2))
  expect(rows.length).toBe(CASES.length)
})
