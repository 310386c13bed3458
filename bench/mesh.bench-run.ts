// Remote access through the mesh beside local access, in one run on loopback. Node B owns a
// `local` volume, and node A serves the same volume as a `type: seal` volume, so every NFS
// request to A becomes a signed SEAL request to B. One libnfs client
// (test/native/bin/aegis-nfs --bench) drives both B's NFS endpoint (local) and A's (seal). A
// separate mesh peer, bench/seal-read-at.mjs, sends read_at requests straight to B without NFS.
//
// Each figure is the median of RUNS runs after one discarded warm-up run, and the runs alternate
// between the paths. The CPU time that nodes A and B spend during each case comes from
// /proc/PID/stat. Results go to stdout as Markdown tables and to bench/results/mesh.json, and
// docs/benchmarks.md records them with the machine they came from.

import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { freePort, peerIdFor, sealVolumeYaml, startNodeProcess, type NodeProcess } from '../test/helpers/mesh-cluster.js'
import { ensureNfsClientBuilt, runNfsBench, type NfsBenchOptions, type NfsBenchResult } from '../test/helpers/nfs-client.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const MIB = 1024 * 1024
const FILE_BYTES = 256 * MIB
const SMALL_READ_BYTES = 4096
const SMALL_READ_SECONDS = 5
/** A file of random bytes that the bench writes straight into B's volume directory. */
const DATA_FILE = 'data.bin'
const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

type Path = 'local' | 'seal'

interface NfsCase {
  label: string
  unit: 'MiB/s' | 'ops/s'
  options: NfsBenchOptions & { op: 'read' | 'write' }
  /** File inside the volume for each path. The write cases write one file per path. */
  files: Record<Path, string>
}

const NFS_CASES: NfsCase[] = [
  {
    label: 'sequential write, 256 MiB, 1 MiB requests, 4 in flight, COMMIT at end',
    unit: 'MiB/s',
    options: { op: 'write', size: FILE_BYTES, inflight: 4 },
    files: { local: 'write-local.dat', seal: 'write-seal.dat' }
  },
  {
    label: 'sequential read, 256 MiB, 1 MiB requests, 4 in flight',
    unit: 'MiB/s',
    options: { op: 'read', inflight: 4 },
    files: { local: DATA_FILE, seal: DATA_FILE }
  },
  {
    label: '4 KiB reads, sequential offsets, 1 in flight',
    unit: 'ops/s',
    options: { op: 'read', chunk: SMALL_READ_BYTES, inflight: 1, seconds: SMALL_READ_SECONDS },
    files: { local: DATA_FILE, seal: DATA_FILE }
  },
  {
    label: '4 KiB reads, sequential offsets, 16 in flight',
    unit: 'ops/s',
    options: { op: 'read', chunk: SMALL_READ_BYTES, inflight: 16, seconds: SMALL_READ_SECONDS },
    files: { local: DATA_FILE, seal: DATA_FILE }
  }
]

interface ReadAtCase {
  label: string
  pattern: 'random' | 'sequential'
  lengthBytes: number
  inflight: number
  seconds: number
}

const READ_AT_CASES: ReadAtCase[] = [
  { label: 'read_at 4 KiB, random offsets, 1 in flight', pattern: 'random', lengthBytes: SMALL_READ_BYTES, inflight: 1, seconds: SMALL_READ_SECONDS },
  { label: 'read_at 4 KiB, random offsets, 16 in flight', pattern: 'random', lengthBytes: SMALL_READ_BYTES, inflight: 16, seconds: SMALL_READ_SECONDS },
  { label: 'read_at 1 MiB, sequential offsets, 4 in flight', pattern: 'sequential', lengthBytes: MIB, inflight: 4, seconds: SMALL_READ_SECONDS }
]

/** One result line of bench/seal-read-at.mjs. */
interface ReadAtFigures extends ReadAtCase {
  ops: number
  bytes: number
  elapsedSeconds: number
  opsPerSecond: number
  mibPerSecond: number
  clientCpuSeconds: number
  latencyMs: { p50: number; p90: number; p99: number; max: number }
}

interface Cluster {
  a: NodeProcess
  b: NodeProcess
  readerDir: string
  bAddress: string
  /** Directory of the shared volume on B's disk. */
  volumeDir: string
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.floor(sorted.length / 2)]
}

/** CPU time, user and system, that process `pid` has used so far, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The fields after the command name start at field 3 (state); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
}

function ownerYaml(meshPort: number, callers: string[], policyDir: string): string {
  return `volumes:
  - name: shared
    type: local
    mount_path: /workspace/shared
    access_mode: read-write
mesh:
  listen: [/ip4/127.0.0.1/tcp/${meshPort}]
  trusted_peers: [${callers.join(', ')}]
  peers:
${callers.map((peer) => `    ${peer}:\n      labels: [bench]\n`).join('')}  share:
    - volume: shared
      labels: [bench]
  policy_dir: ${policyDir}
`
}

function callerYaml(ownerPeer: string, ownerAddress: string, meshPort: number): string {
  return `volumes:
${sealVolumeYaml('remote', ownerPeer, 'shared')}mesh:
  listen: [/ip4/127.0.0.1/tcp/${meshPort}]
  bootstrap: [${ownerAddress}]
`
}

/** Writes `sizeBytes` random bytes to `file` in 16 MiB pieces. */
function writeRandomFile(file: string, sizeBytes: number): void {
  const descriptor = fs.openSync(file, 'w')
  try {
    for (let written = 0; written < sizeBytes; written += 16 * MIB) fs.writeSync(descriptor, randomBytes(Math.min(16 * MIB, sizeBytes - written)))
  } finally {
    fs.closeSync(descriptor)
  }
}

function sha256OfFile(file: string): string {
  const hash = createHash('sha256')
  const descriptor = fs.openSync(file, 'r')
  const buffer = Buffer.allocUnsafe(16 * MIB)
  try {
    for (let read = fs.readSync(descriptor, buffer); read > 0; read = fs.readSync(descriptor, buffer)) hash.update(buffer.subarray(0, read))
  } finally {
    fs.closeSync(descriptor)
  }
  return hash.digest('hex')
}

/**
 * Starts B (the owner) and A (the caller), each `aegis-node serve` in its own process. Adds each
 * node to `started` and each data directory to `tempDirs` as soon as it exists, for the cleanup.
 */
async function startCluster(started: NodeProcess[], tempDirs: string[]): Promise<Cluster> {
  const tempDir = (prefix: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    tempDirs.push(dir)
    return dir
  }
  const dirs = { a: tempDir('aegis-mesh-bench-a-'), b: tempDir('aegis-mesh-bench-b-'), reader: tempDir('aegis-mesh-bench-reader-') }
  const peers = { a: await peerIdFor(dirs.a), b: await peerIdFor(dirs.b), reader: await peerIdFor(dirs.reader) }
  const [portA, portB] = [await freePort(), await freePort()]
  const policyDir = path.join(dirs.b, 'policies')
  fs.mkdirSync(policyDir)
  // The policy reads neither context.offset nor context.length, so B evaluates it once per peer,
  // operation and file, and then serves later requests from its decision cache.
  fs.writeFileSync(path.join(policyDir, 'bench.cedar'), '@id("bench-all")\npermit (principal, action, resource) when { principal.labels.contains("bench") };\n')

  const b = await startNodeProcess({ name: 'node-b', dataDir: dirs.b, meshPort: portB, yaml: ownerYaml(portB, [peers.a, peers.reader], policyDir) })
  started.push(b)
  const bAddress = `/ip4/127.0.0.1/tcp/${portB}/p2p/${peers.b}`
  const a = await startNodeProcess({ name: 'node-a', dataDir: dirs.a, meshPort: portA, yaml: callerYaml(peers.b, bAddress, portA) })
  started.push(a)
  await a.waitForLog((entry) => entry.msg === 'connected to bootstrap peer')
  return { a, b, readerDir: dirs.reader, bAddress, volumeDir: path.join(dirs.b, 'volumes', 'shared') }
}

/** Runs one libnfs bench and returns its summary with the CPU seconds A and B spent meanwhile. */
async function runNfsCase(cluster: Cluster, benchPath: Path, benchCase: NfsCase): Promise<{ result: NfsBenchResult; cpuSeconds: Record<'a' | 'b', number> }> {
  const url = benchPath === 'local' ? cluster.b.url('shared') : cluster.a.url('remote')
  const { op, ...options } = benchCase.options
  const pids = { a: cluster.a.process.pid!, b: cluster.b.process.pid! }
  const before = { a: cpuSeconds(pids.a), b: cpuSeconds(pids.b) }
  const result = await runNfsBench(url, op, { ...options, path: benchCase.files[benchPath] })
  const spent = { a: cpuSeconds(pids.a) - before.a, b: cpuSeconds(pids.b) - before.b }

  // A broken path must fail the bench, not report a rate.
  expect(result.bytes, `${benchPath}: ${benchCase.label}`).toBe(benchCase.unit === 'MiB/s' ? FILE_BYTES : result.ops * SMALL_READ_BYTES)
  if (benchCase.unit === 'MiB/s') expect(result.complete, `${benchPath}: ${benchCase.label}`).toBe(true)
  expect(result.ops).toBeGreaterThan(0)
  return { result, cpuSeconds: spent }
}

/**
 * Runs bench/seal-read-at.mjs for `cases` and returns its figures, each with the CPU seconds B
 * spent during that case. The script also compares 256 reads with the file on B's disk.
 */
async function runReadAt(cluster: Cluster, cases: ReadAtCase[]): Promise<Array<ReadAtFigures & { ownerCpuSeconds: number }>> {
  const script = path.join(root, 'bench', 'seal-read-at.mjs')
  const args = [script, cluster.readerDir, cluster.bAddress, 'shared', DATA_FILE, JSON.stringify(cases), path.join(cluster.volumeDir, DATA_FILE)]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const limitMs = (cases.reduce((sum, benchCase) => sum + benchCase.seconds, 0) + 60) * 1000
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))

  const pidB = cluster.b.process.pid!
  const figures: Array<ReadAtFigures & { ownerCpuSeconds: number }> = []
  const lines: string[] = []
  let ownerCpuAtStart = 0
  let verified = false
  try {
    for await (const line of readline.createInterface({ input: child.stdout })) {
      lines.push(line)
      const message = JSON.parse(line) as { event: string; ok?: boolean } & ReadAtFigures
      if (message.event === 'start') ownerCpuAtStart = cpuSeconds(pidB)
      else if (message.event === 'result') figures.push({ ...message, ownerCpuSeconds: cpuSeconds(pidB) - ownerCpuAtStart })
      else if (message.event === 'verify') verified = message.ok === true
    }
    const code = await exited
    expect(code, `seal-read-at.mjs exited with ${code}:\n${lines.join('\n')}\n${stderr}`).toBe(0)
  } finally {
    clearTimeout(timer)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }

  expect(verified, `content check of read_at failed:\n${lines.join('\n')}`).toBe(true)
  expect(figures.map((figure) => figure.label)).toEqual(cases.map((benchCase) => benchCase.label))
  for (const figure of figures) expect(figure.bytes, figure.label).toBe(figure.ops * figure.lengthBytes)
  return figures
}

function machine(): Record<string, string> {
  const filesystem = execFileSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).split('\n')[1]?.split(/\s+/)[1] ?? 'unknown'
  return {
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: os.release(),
    node: process.version,
    filesystem
  }
}

const format = (value: number, digits = 0): string => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

it('mesh: seal volume beside local volume', async () => {
  ensureNfsClientBuilt()
  const loadAtStart = os.loadavg()
  const started: NodeProcess[] = []
  const tempDirs: string[] = []
  const nfsRows: Array<{ label: string; unit: string; local: number; seal: number; ratio: number; cpuSeconds: { local: { b: number }; seal: { a: number; b: number } }; ops: Record<Path, number> }> = []
  const readAtRuns: Array<Array<ReadAtFigures & { ownerCpuSeconds: number }>> = []

  try {
    const cluster = await startCluster(started, tempDirs)
    writeRandomFile(path.join(cluster.volumeDir, DATA_FILE), FILE_BYTES)

    for (const benchCase of NFS_CASES) {
      const figure = (run: Awaited<ReturnType<typeof runNfsCase>>): number => (benchCase.unit === 'MiB/s' ? run.result.mibPerSecond : run.result.opsPerSecond)
      // One discarded run each, so that JIT compilation and cold caches do not count.
      await runNfsCase(cluster, 'local', benchCase)
      await runNfsCase(cluster, 'seal', benchCase)
      const runs: Record<Path, Array<Awaited<ReturnType<typeof runNfsCase>>>> = { local: [], seal: [] }
      for (let run = 0; run < RUNS; run++) {
        runs.local.push(await runNfsCase(cluster, 'local', benchCase))
        runs.seal.push(await runNfsCase(cluster, 'seal', benchCase))
      }
      const local = median(runs.local.map(figure))
      const seal = median(runs.seal.map(figure))
      nfsRows.push({
        label: benchCase.label,
        unit: benchCase.unit,
        local,
        seal,
        ratio: seal / local,
        cpuSeconds: {
          local: { b: median(runs.local.map((run) => run.cpuSeconds.b)) },
          seal: { a: median(runs.seal.map((run) => run.cpuSeconds.a)), b: median(runs.seal.map((run) => run.cpuSeconds.b)) }
        },
        ops: { local: median(runs.local.map((run) => run.result.ops)), seal: median(runs.seal.map((run) => run.result.ops)) }
      })
      process.stdout.write(`${benchCase.label}: local ${format(local)} ${benchCase.unit}, seal ${format(seal)} ${benchCase.unit}, ratio ${(seal / local).toFixed(3)}\n`)
    }

    // The script warms up on its own, before its first timed case.
    for (let run = 0; run < RUNS; run++) readAtRuns.push(await runReadAt(cluster, READ_AT_CASES))

    // Both files were written with the client's same pattern, so they must match byte for byte.
    const written = NFS_CASES[0].files
    expect(fs.statSync(path.join(cluster.volumeDir, written.seal)).size).toBe(FILE_BYTES)
    expect(sha256OfFile(path.join(cluster.volumeDir, written.seal))).toBe(sha256OfFile(path.join(cluster.volumeDir, written.local)))
  } finally {
    await Promise.all(started.map((node) => node.stop()))
    // B's directory contains about 900 MiB by the end: the data file, both written files and the audit trail.
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  }

  const readAtRows = READ_AT_CASES.map((benchCase, index) => {
    const runs = readAtRuns.map((figures) => figures[index])
    const pick = (read: (figure: ReadAtFigures & { ownerCpuSeconds: number }) => number): number => median(runs.map(read))
    return {
      label: benchCase.label,
      opsPerSecond: pick((figure) => figure.opsPerSecond),
      mibPerSecond: pick((figure) => figure.mibPerSecond),
      latencyMs: { p50: pick((figure) => figure.latencyMs.p50), p90: pick((figure) => figure.latencyMs.p90), p99: pick((figure) => figure.latencyMs.p99), max: pick((figure) => figure.latencyMs.max) },
      cpuUsPerOp: { client: pick((figure) => (figure.clientCpuSeconds / figure.ops) * 1e6), b: pick((figure) => (figure.ownerCpuSeconds / figure.ops) * 1e6) },
      runs
    }
  })

  const nfsTable = [
    '| Case | Unit | local (NFS on B) | seal (NFS on A, mesh to B) | seal / local |',
    '|---|---|---:|---:|---:|',
    ...nfsRows.map((row) => `| ${row.label} | ${row.unit} | ${format(row.local)} | ${format(row.seal)} | ${row.ratio.toFixed(3)} |`)
  ].join('\n')
  const cpuTable = [
    '| Case | local: B | seal: A | seal: B |',
    '|---|---:|---:|---:|',
    ...nfsRows.map((row) => {
      const perUnit = row.unit === 'MiB/s' ? FILE_BYTES / MIB : 1
      const scale = row.unit === 'MiB/s' ? 1e3 : 1e6
      const local = (row.cpuSeconds.local.b / (row.unit === 'MiB/s' ? perUnit : row.ops.local)) * scale
      const sealA = (row.cpuSeconds.seal.a / (row.unit === 'MiB/s' ? perUnit : row.ops.seal)) * scale
      const sealB = (row.cpuSeconds.seal.b / (row.unit === 'MiB/s' ? perUnit : row.ops.seal)) * scale
      const digits = row.unit === 'MiB/s' ? 1 : 0
      return `| ${row.label} (${row.unit === 'MiB/s' ? 'ms per MiB' : 'µs per request'}) | ${format(local, digits)} | ${format(sealA, digits)} | ${format(sealB, digits)} |`
    })
  ].join('\n')
  const readAtTable = [
    '| Case | ops/s | MiB/s | p50 ms | p90 ms | p99 ms | max ms | CPU µs per request, reader | CPU µs per request, B |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...readAtRows.map(
      (row) =>
        `| ${row.label} | ${format(row.opsPerSecond)} | ${format(row.mibPerSecond)} | ${format(row.latencyMs.p50, 2)} | ${format(row.latencyMs.p90, 2)} | ${format(row.latencyMs.p99, 2)} | ${format(row.latencyMs.max, 2)} | ${format(row.cpuUsPerOp.client)} | ${format(row.cpuUsPerOp.b)} |`
    )
  ].join('\n')

  const info = machine()
  const loadAtEnd = os.loadavg()
  process.stdout.write(`\nMachine: ${JSON.stringify(info)}\nLoad average at start ${loadAtStart.map((load) => load.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((load) => load.toFixed(2)).join(' ')}\nMedian of ${RUNS} runs each.\n\n${nfsTable}\n\nCPU of the nodes:\n\n${cpuTable}\n\n${readAtTable}\n`)
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true })
  fs.writeFileSync(
    path.join(root, 'bench/results/mesh.json'),
    JSON.stringify({ date: new Date().toISOString(), machine: info, loadAverage: { start: loadAtStart, end: loadAtEnd }, runs: RUNS, fileBytes: FILE_BYTES, nfs: nfsRows, readAt: readAtRows }, null, 2)
  )
  expect(nfsRows.length).toBe(NFS_CASES.length)
  expect(readAtRows.every((row) => row.opsPerSecond > 0)).toBe(true)
})
