// NFS overhead per storage backend: sequential write and read of one file through aegis-node, beside
// the same bytes written and read straight to the backend without aegis-node, on loopback.
//
// One `aegis-node serve` process serves one volume per backend: hostPath (the baseline), OpenDAL fs,
// OpenDAL memory, OpenDAL s3 against s3rver, OpenDAL webdav against `rclone serve webdav`, and
// seaweedfs against the fake filer of test/helpers/seaweedfs-fake.ts. The libnfs test client drives
// the NFS side; the direct side uses node:fs, an OpenDAL Operator or fetch from this process. Each
// figure is the median of RUNS runs after one discarded warm-up run. Results go to stdout as a
// Markdown table and to bench/results/backends.json; docs/benchmarks.md records them.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Operator } from 'opendal'
import { expect, it } from 'vitest'
import { ensureNfsClientBuilt, runNfsBench, type NfsBenchResult } from '../test/helpers/nfs-client.js'
import { startRcloneWebdav, type RcloneWebdav } from '../test/helpers/rclone-webdav.js'
import { startS3rver } from '../test/helpers/s3rver.js'
import { startFakeFiler, type FakeFiler } from '../test/helpers/seaweedfs-fake.js'
import { machine } from './machine.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
// 64 MiB keeps each transfer to the slowest test server (s3rver) within a few seconds.
const FILE_MIB = Number(process.env.BENCH_BACKEND_MIB ?? 64)
const FILE_BYTES = FILE_MIB * 1024 * 1024
const CHUNK_BYTES = 1024 * 1024
const INFLIGHT = 4

/** Direct access to one backend, without aegis-node. Each method returns the seconds its transfer took. */
interface Direct {
  /** Writes `data` as `name` and returns once the backend stores it (after fsync for a local file). */
  write(name: string, data: Buffer): Promise<number>
  /** Reads `name` whole and checks that it is `expected`, outside the timed part. */
  read(name: string, expected: Buffer): Promise<number>
}

interface Backend {
  /** Volume name, export path and table label. */
  name: string
  /** The volume's entry under `volumes:` in the node config, without the name and mount path. */
  volumeYaml: string[]
  direct: Direct
  /**
   * Reads a file that was written through NFS from the backend itself, to check that the COMMIT
   * left the whole file there. Absent for the memory service, because its store lives in the node.
   */
  storedByNfs?: (name: string) => Promise<Buffer>
}

interface Row {
  backend: string
  nfsWrite: number
  directWrite: number
  nfsRead: number
  directRead: number
  runs: { nfsWrite: number[]; directWrite: number[]; nfsRead: number[]; directRead: number[] }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/**
 * Returns the bytes the libnfs bench client writes: its 1 MiB xorshift64 pattern (fill_pattern in
 * test/native/nfsclient.c), repeated, so that the direct writes send the same content.
 */
function clientPattern(sizeBytes: number): Buffer {
  const mask = (1n << 64n) - 1n
  const block = Buffer.alloc(CHUNK_BYTES)
  let x = 0x9e3779b97f4a7c15n
  for (let i = 0; i < block.length; i++) {
    x ^= (x << 13n) & mask
    x ^= x >> 7n
    x ^= (x << 17n) & mask
    block[i] = Number(x & 0xffn)
  }
  const data = Buffer.alloc(sizeBytes)
  for (let offset = 0; offset < sizeBytes; offset += block.length) block.copy(data, offset)
  return data
}

/** Runs `action` and returns the seconds it took, with the value it returned. */
async function timed<T>(action: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const start = process.hrtime.bigint()
  const value = await action()
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, value }
}

function expectSameBytes(backend: string, read: Buffer, expected: Buffer): void {
  expect(read.equals(expected), `${backend}: the direct read returned other bytes than were written`).toBe(true)
}

/**
 * Returns direct access to the files of a directory through node:fs. The open and close are not
 * timed, because the NFS client's figures leave out its open and create as well.
 */
function localDirect(dir: string): Direct {
  return {
    async write(name, data) {
      const handle = await fs.promises.open(path.join(dir, name), 'w')
      try {
        // fsync, because the NFS write ends with a COMMIT.
        const { seconds } = await timed(async () => {
          await handle.writeFile(data)
          await handle.sync()
        })
        return seconds
      } finally {
        await handle.close()
      }
    },
    async read(name, expected) {
      const handle = await fs.promises.open(path.join(dir, name), 'r')
      try {
        const { seconds, value } = await timed(() => handle.readFile())
        expectSameBytes('local', value, expected)
        return seconds
      } finally {
        await handle.close()
      }
    }
  }
}

function operatorDirect(name: string, operator: Operator): Direct {
  return {
    async write(file, data) {
      return (await timed(() => operator.write(file, data))).seconds
    },
    async read(file, expected) {
      const { seconds, value } = await timed(() => operator.read(file))
      expectSameBytes(name, value, expected)
      return seconds
    }
  }
}

/** Returns direct access to a directory of the filer: PUT and GET of whole files on its HTTP API. */
function filerDirect(filerUrl: string, dir: string): Direct {
  return {
    async write(name, data) {
      const { seconds, value: response } = await timed(async () => {
        const response = await fetch(`${filerUrl}${dir}/${name}`, { method: 'PUT', body: data })
        await response.arrayBuffer()
        return response
      })
      if (!response.ok) throw new Error(`PUT ${dir}/${name} to the fake filer failed: HTTP ${response.status}`)
      return seconds
    },
    async read(name, expected) {
      const { seconds, value: response } = await timed(async () => {
        const response = await fetch(`${filerUrl}${dir}/${name}`)
        return { status: response.status, ok: response.ok, body: Buffer.from(await response.arrayBuffer()) }
      })
      if (!response.ok) throw new Error(`GET ${dir}/${name} from the fake filer failed: HTTP ${response.status}`)
      expectSameBytes('seaweedfs', response.body, expected)
      return seconds
    }
  }
}

function yamlMap(options: Record<string, string>): string[] {
  return Object.entries(options).map(([key, value]) => `      ${key}: ${JSON.stringify(value)}`)
}

/** Starts `aegis-node serve` with the given volumes as its own process and returns its NFS port. */
async function startNode(dataDir: string, backends: Backend[]): Promise<{ port: number; stop: () => Promise<void> }> {
  const configFile = path.join(dataDir, 'node.yaml')
  const volumes = backends.flatMap((backend) => [`  - name: ${backend.name}`, `    mount_path: /workspace/${backend.name}`, '    access_mode: read-write', ...backend.volumeYaml])
  fs.writeFileSync(configFile, [`node:\n  data_dir: ${dataDir}`, 'nfs:\n  bind: 127.0.0.1\n  port: 0', 'volumes:', ...volumes, ''].join('\n'))
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'serve', '--config', configFile, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] })
  // A test process that exits without running its cleanup (killed by a timeout) still ends the node.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.removeListener('exit', killOnExit)
      resolve()
    })
  )
  let output = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`aegis-node did not start within 30 s; output:\n${output.slice(-4000)}`)), 30_000)
    // This listener is never removed, so stdout is read for the whole run and its pipe never fills.
    child.stdout.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-64_000)
      const match = /listening on [^:]+:(\d+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`aegis-node exited before listening; output:\n${output.slice(-4000)}`))
    })
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL')
    await exited
    throw error
  })
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
  }
}

it('backends: NFS through each backend beside the backend alone', async () => {
  // OpenDAL's HTTP client, in this process and in the node, would send requests through a proxy
  // named in the environment. Every request of this benchmark must stay on loopback.
  for (const name of Object.keys(process.env)) {
    if (/^(https?|all|no)_proxy$/i.test(name)) delete process.env[name]
  }
  ensureNfsClientBuilt()
  const data = clientPattern(FILE_BYTES)
  const tempDirs: string[] = []
  const tempDir = (prefix: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    tempDirs.push(dir)
    return dir
  }
  const stops: Array<() => Promise<void>> = []
  const rows: Row[] = []

  try {
    const s3 = await startS3rver('bench')
    stops.push(() => s3.stop())
    const webdav: RcloneWebdav = await startRcloneWebdav()
    stops.push(() => webdav.stop())
    const filer: FakeFiler = await startFakeFiler()
    stops.push(() => filer.stop())

    const hostDir = tempDir('aegis-bench-host-')
    const fsNfsDir = tempDir('aegis-bench-fs-nfs-')
    const webdavOptions = { endpoint: webdav.endpoint, username: webdav.username, password: webdav.password }
    const backends: Backend[] = [
      {
        name: 'local',
        volumeYaml: ['    type: hostPath', '    config:', `      path: ${hostDir}`],
        direct: localDirect(tempDir('aegis-bench-local-direct-')),
        storedByNfs: (name) => fs.promises.readFile(path.join(hostDir, name))
      },
      {
        name: 'opendal-fs',
        volumeYaml: ['    type: opendal', '    provider: fs', '    config:', ...yamlMap({ root: fsNfsDir })],
        direct: operatorDirect('opendal-fs', new Operator('fs', { root: tempDir('aegis-bench-fs-direct-') })),
        storedByNfs: (name) => fs.promises.readFile(path.join(fsNfsDir, name))
      },
      {
        name: 'opendal-memory',
        volumeYaml: ['    type: opendal', '    provider: memory', '    config: {}'],
        direct: operatorDirect('opendal-memory', new Operator('memory', {}))
      },
      {
        name: 'opendal-s3',
        volumeYaml: ['    type: opendal', '    provider: s3', '    config:', ...yamlMap(s3.operatorOptions('/nfs/'))],
        direct: operatorDirect('opendal-s3', new Operator('s3', s3.operatorOptions('/direct/'))),
        storedByNfs: (name) => new Operator('s3', s3.operatorOptions('/nfs/')).read(name)
      },
      {
        name: 'opendal-webdav',
        volumeYaml: ['    type: opendal', '    provider: webdav', '    config:', ...yamlMap({ ...webdavOptions, root: '/nfs/' })],
        direct: operatorDirect('opendal-webdav', new Operator('webdav', { ...webdavOptions, root: '/direct/' })),
        storedByNfs: (name) => fs.promises.readFile(path.join(webdav.dir, 'nfs', name))
      },
      {
        name: 'seaweedfs',
        volumeYaml: ['    type: seaweedfs', '    config:', ...yamlMap({ filer_url: filer.url, path: '/nfs' })],
        direct: filerDirect(filer.url, '/direct'),
        storedByNfs: async (name) => filer.readFile(`/nfs/${name}`) ?? Buffer.alloc(0)
      }
    ]

    const node = await startNode(tempDir('aegis-bench-node-'), backends)
    stops.push(() => node.stop())

    for (const backend of backends) {
      const url = `nfs://127.0.0.1/${backend.name}?nfsport=${node.port}&mountport=${node.port}`
      const transfer = (result: NfsBenchResult): number => {
        // A run that the client's time limit stopped early would not measure the whole file.
        expect(result.complete, `${backend.name}: ${result.op} did not complete`).toBe(true)
        expect(result.bytes).toBe(FILE_BYTES)
        return result.mibPerSecond
      }
      const nfsWrite = async (file: string) => transfer(await runNfsBench(url, 'write', { path: file, size: FILE_BYTES, chunk: CHUNK_BYTES, inflight: INFLIGHT }))
      const nfsRead = async (file: string) => transfer(await runNfsBench(url, 'read', { path: file, chunk: CHUNK_BYTES, inflight: INFLIGHT }))
      const directWrite = async (file: string) => FILE_MIB / (await backend.direct.write(file, data))
      const directRead = async (file: string) => FILE_MIB / (await backend.direct.read(file, data))

      // Every run writes a new file, because truncating an existing file of an OpenDAL volume first
      // downloads its whole content into the staging file, which would add a download to the write.
      // The first run of each kind is a warm-up and is not counted.
      await nfsWrite('warmup.dat')
      await nfsRead('warmup.dat')
      await directWrite('warmup.dat')
      await directRead('warmup.dat')
      const runs: Row['runs'] = { nfsWrite: [], directWrite: [], nfsRead: [], directRead: [] }
      for (let run = 0; run < RUNS; run++) {
        const file = `run-${run}.dat`
        runs.nfsWrite.push(await nfsWrite(file))
        runs.nfsRead.push(await nfsRead(file))
        runs.directWrite.push(await directWrite(file))
        runs.directRead.push(await directRead(file))
      }
      if (backend.storedByNfs !== undefined) {
        const stored = await backend.storedByNfs('run-0.dat')
        expect(stored.equals(data), `${backend.name}: the file written through NFS is not on the backend as written`).toBe(true)
      }
      const row: Row = {
        backend: backend.name,
        nfsWrite: median(runs.nfsWrite),
        directWrite: median(runs.directWrite),
        nfsRead: median(runs.nfsRead),
        directRead: median(runs.directRead),
        runs
      }
      rows.push(row)
      const runList = (values: number[]) => values.map((value) => value.toFixed(0)).join(', ')
      process.stdout.write(
        `${row.backend}: NFS write ${runList(runs.nfsWrite)}, direct write ${runList(runs.directWrite)}, ` +
          `NFS read ${runList(runs.nfsRead)}, direct read ${runList(runs.directRead)} MiB/s\n`
      )
    }
  } finally {
    // The node first, while its backends still respond, then the servers. Each stop runs even when another fails.
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => process.stderr.write(`cleanup: ${String(error)}\n`))
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  }

  const info = machine()
  const format = (value: number) => Math.round(value).toLocaleString('en-US')
  const table = [
    '| Backend | NFS write | direct write | NFS / direct | NFS read | direct read | NFS / direct |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.backend} | ${format(row.nfsWrite)} | ${format(row.directWrite)} | ${(row.nfsWrite / row.directWrite).toFixed(2)} ` +
        `| ${format(row.nfsRead)} | ${format(row.directRead)} | ${(row.nfsRead / row.directRead).toFixed(2)} |`
    )
  ].join('\n')
  process.stdout.write(`\nMachine: ${JSON.stringify(info)}\n${FILE_MIB} MiB, MiB/s, median of ${RUNS} runs each.\n\n${table}\n`)
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true })
  fs.writeFileSync(
    path.join(root, 'bench/results/backends.json'),
    JSON.stringify({ date: new Date().toISOString(), machine: info, runs: RUNS, fileBytes: FILE_BYTES, chunkBytes: CHUNK_BYTES, inflight: INFLIGHT, unit: 'MiB/s', rows }, null, 2)
  )
  expect(rows.length).toBe(6)
})
