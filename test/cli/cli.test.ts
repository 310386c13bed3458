// The aegis-node command line as an operator runs it: a real process, real signals, a real client.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { makeTempDir } from '../helpers/node.js'
import { NFS_PROGRAM, MOUNT_PROGRAM, RpcClient } from '../helpers/rpc-client.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const cli = path.join(root, 'dist/src/cli/main.js')

interface Started {
  child: ChildProcessWithoutNullStreams
  port: number
  lines: string[]
  exited: Promise<number | null>
}

const running: ChildProcessWithoutNullStreams[] = []

/** Starts `aegis-node serve` and waits for its "listening" log line. */
async function serve(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [cli, 'serve', '--nfs-port', '0', ...args], { cwd: root })
  running.push(child)
  const lines: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => reject(new Error(`no listening line within 15 s; output:\n${lines.join('\n')}`)), 15_000)
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      let newline
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        lines.push(line)
        const record = JSON.parse(line) as { port?: number; msg?: string }
        if (record.msg?.startsWith('NFS (MOUNT and NFSv3) listening') && record.port) {
          clearTimeout(timer)
          resolve(record.port)
        }
      }
    })
    child.stderr.on('data', (chunk: Buffer) => lines.push(chunk.toString()))
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${lines.join('\n')}`)))
  })
  return { child, port, lines, exited }
}

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 20_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

function writeConfig(dir: string, volumesYaml: string): string {
  const file = path.join(dir, 'node.yaml')
  fs.writeFileSync(file, `node:\n  data_dir: ${path.join(dir, 'data')}\nnfs:\n  port: 0\nvolumes:\n${volumesYaml}`)
  return file
}

beforeAll(() => {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing; run "npm run build" first (npm test does)`)
})

afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL')
})

describe('aegis-node serve', () => {
  it('starts on the embedded default', async () => {
    const dataDir = makeTempDir()
    const node = await serve(['--data-dir', dataDir])
    const mountLine = node.lines.find((line) => line.includes('mount -t nfs'))
    expect(mountLine).toContain(`port=${node.port},mountport=${node.port}`)
    expect(mountLine).toContain('127.0.0.1:/scratch /workspace/scratch')
    expect(fs.statSync(path.join(dataDir, 'volumes/scratch')).isDirectory()).toBe(true)

    const listing = spawnSync('nfs-ls', [`nfs://127.0.0.1/scratch?nfsport=${node.port}&mountport=${node.port}`], { encoding: 'utf8', timeout: 10_000 })
    expect(listing.status).toBe(0)
    node.child.kill('SIGTERM')
    expect(await node.exited).toBe(0)
  })

  it('finishes in-flight writes on SIGTERM', async () => {
    const dir = makeTempDir()
    const config = writeConfig(dir, `  - name: work\n    type: local\n    mount_path: /workspace/work\n    access_mode: read-write\n`)
    const node = await serve(['--config', config])
    const client = await RpcClient.connect(node.port)
    const mnt = await client.call(MOUNT_PROGRAM, 3, 1, (w) => w.string('/work'))
    mnt.body.u32()
    const root = Buffer.from(mnt.body.opaque(64))
    const created = await client.call(NFS_PROGRAM, 3, 8, (w) => {
      w.opaque(root)
      w.string('big.bin')
      w.u32(0) // UNCHECKED
      for (let i = 0; i < 6; i++) w.u32(0) // empty sattr3
    })
    expect(created.body.u32()).toBe(0)
    created.body.u32()
    const file = Buffer.from(created.body.opaque(64))

    // Sixteen 1 MiB FILE_SYNC writes, then SIGTERM while they are in flight.
    const data = Buffer.alloc(1024 * 1024, 7)
    const replies = []
    for (let i = 0; i < 16; i++) {
      const { xid, body } = client.encodeCall(NFS_PROGRAM, 3, 7, (w) => {
        w.opaque(file)
        w.u64(i * data.length)
        w.u32(data.length)
        w.u32(2)
        w.opaque(data)
      })
      replies.push(client.reply(xid, 20_000))
      const header = Buffer.alloc(4)
      header.writeUInt32BE((0x8000_0000 | body.length) >>> 0)
      client.sendRaw(Buffer.concat([header, body]))
    }
    // Soon enough that some of the data is still unread: the stop must close such a connection too.
    await new Promise((resolve) => setTimeout(resolve, 2))
    node.child.kill('SIGTERM')

    const answered = await Promise.allSettled(replies)
    const statuses = answered.filter((result) => result.status === 'fulfilled').map((result) => (result as PromiseFulfilledResult<{ body: { u32(): number } }>).value.body.u32())
    expect(statuses.length).toBeGreaterThan(0)
    expect(statuses.every((status) => status === 0)).toBe(true)
    expect(await node.exited).toBe(0)
    // The stop ran to its end: the audit trail closed and the lock is gone.
    const messages = node.lines.map((line) => (line.startsWith('{') ? (JSON.parse(line) as { msg?: string }).msg : line))
    expect(messages, node.lines.slice(-10).join('\n')).toContain('node stopped')
    expect(fs.existsSync(path.join(dir, 'data/node.lock'))).toBe(false)

    // Every write that got a reply is on disk, and each has its audit event.
    const stored = fs.statSync(path.join(dir, 'data/volumes/work/big.bin')).size
    expect(stored).toBeGreaterThanOrEqual(statuses.length * data.length)
    const events = fs.readFileSync(path.join(dir, 'data/audit.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { procedure: string })
    expect(events.filter((event) => event.procedure === 'WRITE').length).toBeGreaterThanOrEqual(statuses.length)
    client.close()
  })

  it('rejects a stray argument', () => {
    for (const args of [['serve', 'extra-arg'], ['exports', 'a'], ['mesh', 'peers', 'x'], ['policy', 'check', 'dir', 'more']]) {
      const result = run([...args, '--data-dir', makeTempDir()])
      expect(result.status, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toContain(`unexpected argument ${JSON.stringify(args.at(-1))}`)
    }
  })

  it('refuses a data directory in use', async () => {
    const dataDir = makeTempDir()
    const first = await serve(['--data-dir', dataDir])
    const second = run(['serve', '--data-dir', dataDir, '--nfs-port', '0'])
    expect(second.status).toBe(2)
    expect(second.stderr).toContain(`in use by process ${first.child.pid}`)
    first.child.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    expect(fs.existsSync(path.join(dataDir, 'node.lock'))).toBe(false)
  })

  it('takes over a stale lock', async () => {
    const dataDir = makeTempDir()
    fs.writeFileSync(path.join(dataDir, 'node.lock'), '999999999\n')
    const node = await serve(['--data-dir', dataDir])
    expect(fs.readFileSync(path.join(dataDir, 'node.lock'), 'utf8').trim()).toBe(String(node.child.pid))
    node.child.kill('SIGTERM')
    expect(await node.exited).toBe(0)
  })

  it('refuses a volume whose backend cannot be opened', () => {
    const dir = makeTempDir()
    // Port 1 of the loopback address: nothing listens there, so the connection is refused at once.
    const config = writeConfig(dir, `  - name: shared-data\n    type: opendal\n    provider: webdav\n    config: {endpoint: "http://127.0.0.1:1/"}\n    mount_path: /workspace/shared-data\n    access_mode: read-write\n`)
    const result = run(['serve', '--config', config])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('volume shared-data')
    expect(result.stderr).toContain('could not open the opendal webdav backend')
  })

  it('refuses a missing hostPath directory', () => {
    const dir = makeTempDir()
    const config = writeConfig(dir, `  - name: weights\n    type: hostPath\n    config:\n      path: ${dir}/absent\n    mount_path: /workspace/weights\n    access_mode: read-only\n`)
    const result = run(['serve', '--config', config])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(`${dir}/absent`)
  })

  it('refuses a handle key others can read', () => {
    const dataDir = makeTempDir()
    fs.writeFileSync(path.join(dataDir, 'handle.key'), Buffer.alloc(32, 1), { mode: 0o644 })
    fs.chmodSync(path.join(dataDir, 'handle.key'), 0o644)
    const result = run(['serve', '--data-dir', dataDir, '--nfs-port', '0'])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('chmod 600')
  })

  it('rejects an invalid access_mode', () => {
    const dir = makeTempDir()
    const config = writeConfig(dir, `  - name: work\n    type: local\n    mount_path: /workspace/work\n    access_mode: rw\n`)
    const result = run(['serve', '--config', config])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('access_mode')
    expect(result.stderr).toContain('rw')
  })

  it('rejects a bad port flag', () => {
    const result = run(['serve', '--nfs-port', 'abc'])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('"abc"')
  })
})

describe('aegis-node --version', () => {
  it('prints the package version', () => {
    const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version
    const result = run(['--version'])
    expect(result.status).toBe(0)
    expect(result.stdout.trim()).toBe(version)
  })
})

describe('aegis-node exports', () => {
  it('prints mount and docker commands', () => {
    const dir = makeTempDir()
    const config = writeConfig(
      dir,
      `  - name: work\n    type: local\n    mount_path: /workspace/work\n    access_mode: read-write\n  - name: weights\n    type: hostPath\n    config:\n      path: ${dir}\n    mount_path: /workspace/weights\n    access_mode: read-only\n`
    )
    const result = run(['exports', '--config', config, '--nfs-port', '2049'])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain('mount -t nfs -o vers=3,proto=tcp,port=2049,mountport=2049,nolock 127.0.0.1:/work /workspace/work')
    expect(result.stdout).toContain('127.0.0.1:/weights /workspace/weights')
    expect(result.stdout).toContain('docker volume create --driver local --opt type=nfs')
  })
})
