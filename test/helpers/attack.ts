// Tools for the security suites: a client that keeps every reply byte and status it received, host
// file-tree snapshots to prove that nothing outside a volume changed, handle forgery and audit
// trail reading.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, createHmac } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { parseConfigText } from '../../src/config/index.js'
import { AegisNode } from '../../src/node.js'
import { XdrReader, XdrWriter } from '../../src/nfs/xdr.js'
import { Nfs3Client, mountStatusName, nfsStatusName } from './nfs3.js'
import { type ArgsWriter, recordOf } from './rpc-client.js'
import type { TestNode } from './node.js'

const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** One call seen by an observed client, with the status that came back. */
export interface ObservedCall {
  program: 'nfs' | 'mount'
  procedure: number
  /** The nfsstat3 or mountstat3 name; the accept_stat as "RPC_<n>" when the call was not accepted. */
  status: string
}

/** Everything the server sent to the clients of one suite. */
export class Traffic {
  /** The bytes received on each connection, as they arrived. */
  readonly streams: Buffer[][] = []
  readonly calls: ObservedCall[] = []

  /** True when the bytes received on any connection contain `needle`. */
  contains(needle: Buffer): boolean {
    return this.streams.some((chunks) => Buffer.concat(chunks).includes(needle))
  }

  /** Counts the NFS calls whose reply had one of `statuses`. */
  countNfs(statuses: string[]): number {
    return this.calls.filter((call) => call.program === 'nfs' && statuses.includes(call.status)).length
  }
}

/**
 * Connects an Nfs3Client whose replies are all kept in `traffic`: the raw bytes, to search for
 * leaked content, and the status of each call, to compare with the audit trail.
 */
export async function connectObserved(port: number, traffic: Traffic): Promise<Nfs3Client> {
  const client = await Nfs3Client.connect(port)
  const chunks: Buffer[] = []
  traffic.streams.push(chunks)
  client.rpc.socket.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)))

  const callNfs = client.callNfs.bind(client)
  client.callNfs = async (procedure: number, args: ArgsWriter, options = {}) => {
    try {
      const reply = await callNfs(procedure, args, options)
      traffic.calls.push({ program: 'nfs', procedure, status: nfsStatusName(reply.body.buffer.readUInt32BE(reply.body.offset)) })
      return reply
    } catch (error) {
      const reply = (error as { reply?: { stat: number } }).reply
      if (reply !== undefined) traffic.calls.push({ program: 'nfs', procedure, status: `RPC_${reply.stat}` })
      throw error
    }
  }
  const callMount = client.callMount.bind(client)
  client.callMount = async (procedure: number, args: ArgsWriter = () => {}, options = {}) => {
    const reply = await callMount(procedure, args, options)
    const status = procedure === 1 ? mountStatusName(reply.body.buffer.readUInt32BE(reply.body.offset)) : 'OK'
    traffic.calls.push({ program: 'mount', procedure, status })
    return reply
  }
  return client
}

/** What a snapshot keeps of one host object. */
export interface HostEntry {
  type: 'file' | 'dir' | 'symlink' | 'other'
  ino: bigint
  nlink: bigint
  mode: bigint
  uid: bigint
  gid: bigint
  size: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  /** SHA-256 of a regular file's content, or a symlink's target. */
  digest: string
}

/**
 * Records every object below `root` (not following symlinks), skipping the relative paths in
 * `skip` and everything below them.
 */
export function snapshotTree(root: string, skip: string[] = []): Map<string, HostEntry> {
  const entries = new Map<string, HostEntry>()
  const visit = (relative: string): void => {
    if (skip.includes(relative)) return
    const full = relative === '' ? root : path.join(root, relative)
    const stat = fs.lstatSync(full, { bigint: true })
    let type: HostEntry['type'] = 'other'
    let digest = ''
    if (stat.isFile()) {
      type = 'file'
      digest = createHash('sha256').update(fs.readFileSync(full)).digest('hex')
    } else if (stat.isDirectory()) {
      type = 'dir'
    } else if (stat.isSymbolicLink()) {
      type = 'symlink'
      digest = createHash('sha256').update(fs.readlinkSync(full, { encoding: 'buffer' })).digest('hex')
    }
    entries.set(relative, {
      type,
      ino: stat.ino,
      nlink: stat.nlink,
      mode: stat.mode,
      uid: stat.uid,
      gid: stat.gid,
      size: stat.size,
      mtimeNs: stat.mtimeNs,
      ctimeNs: stat.ctimeNs,
      digest
    })
    if (type === 'dir') {
      for (const name of fs.readdirSync(full).sort()) visit(relative === '' ? name : path.join(relative, name))
    }
  }
  visit('')
  return entries
}

/**
 * Lists how `after` differs from `before`, one line per path, ignoring the times of directories
 * named in `dirsAllowedToChange` (their entry lists may change, as when a volume inside them is used).
 */
export function diffSnapshots(before: Map<string, HostEntry>, after: Map<string, HostEntry>, dirsAllowedToChange: string[] = []): string[] {
  const differences: string[] = []
  for (const [relative, entry] of before) {
    const now = after.get(relative)
    if (now === undefined) {
      differences.push(`${relative || '.'}: removed`)
      continue
    }
    const ignoreTimes = entry.type === 'dir' && dirsAllowedToChange.includes(relative)
    for (const key of Object.keys(entry) as Array<keyof HostEntry>) {
      if (ignoreTimes && (key === 'mtimeNs' || key === 'ctimeNs' || key === 'size')) continue
      if (entry[key] !== now[key]) differences.push(`${relative || '.'}: ${key} ${String(entry[key])} -> ${String(now[key])}`)
    }
  }
  for (const relative of after.keys()) {
    if (!before.has(relative)) differences.push(`${relative}: created`)
  }
  return differences
}

// Handles. The layout is the one aegis-node documents for its handles: version (1 byte), reserved
// (1), export id (4), fileId (8), generation (8), then 16 bytes of HMAC-SHA256 over the first 22.

export const HANDLE_BYTES = 38
const HANDLE_BODY_BYTES = 22

export interface HandleFields {
  version: number
  exportId: number
  fileId: bigint
  generation: bigint
}

export function handleFields(handle: Buffer): HandleFields {
  return {
    version: handle[0],
    exportId: handle.readUInt32BE(2),
    fileId: handle.readBigUInt64BE(6),
    generation: handle.readBigUInt64BE(14)
  }
}

/** Builds a handle body with the given fields and a tag computed by `tag` over the body. */
export function forgeHandle(fields: HandleFields, tag: (body: Buffer) => Buffer): Buffer {
  const body = Buffer.alloc(HANDLE_BODY_BYTES)
  body[0] = fields.version
  body.writeUInt32BE(fields.exportId, 2)
  body.writeBigUInt64BE(fields.fileId, 6)
  body.writeBigUInt64BE(fields.generation, 14)
  return Buffer.concat([body, tag(body).subarray(0, HANDLE_BYTES - HANDLE_BODY_BYTES)])
}

/** Returns a tag function keyed with `key`, as a client that has the node's handle key could compute. */
export function hmacTag(key: Buffer): (body: Buffer) => Buffer {
  return (body) => createHmac('sha256', key).update(body).digest()
}

/** Stops the node, so that the audit trail is flushed, and returns its events. */
export async function stopAndReadAudit(node: TestNode): Promise<Array<Record<string, unknown>>> {
  await node.stop()
  return node.auditEvents()
}

/** Returns a name of `bytes` ASCII letters. */
export function longName(bytes: number): string {
  return 'n'.repeat(bytes)
}

/**
 * Starts a node like startTestNode, but listening on `bind` (such as ::1) and with `dataDir`
 * required, so that a second node can share the first one's handle key.
 */
export async function startNodeBound(bind: string, options: { volumesYaml: string; dataDir: string }): Promise<TestNode> {
  const text = `node:\n  name: test-node\n  data_dir: ${options.dataDir}\nnfs:\n  bind: '${bind}'\n  port: 0\nvolumes:\n${options.volumesYaml}`
  const config = parseConfigText(text, { source: 'test', baseDir: options.dataDir })
  const node = new AegisNode(config, pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' }))
  const address = await node.start()
  const auditPath = config.audit.path
  const host = bind.includes(':') ? `[${bind}]` : bind
  return {
    node,
    port: address.port,
    dataDir: options.dataDir,
    auditPath,
    url: (volume, pathInVolume = '') => `nfs://${host}/${volume}${pathInVolume}?nfsport=${address.port}&mountport=${address.port}`,
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

// Raw RPC records, for clients that run in another process.

/** Encodes one call with an AUTH_SYS root credential as a single-fragment record. */
export function callRecord(xid: number, program: number, version: number, procedure: number, args: ArgsWriter = () => {}): Buffer {
  const w = new XdrWriter(256, 0)
  w.u32(xid)
  w.u32(0) // CALL
  w.u32(2) // RPC version
  w.u32(program)
  w.u32(version)
  w.u32(procedure)
  const credential = new XdrWriter(64, 0)
  credential.u32(0) // stamp
  credential.string('attacker')
  credential.u32(0) // uid
  credential.u32(0) // gid
  credential.u32(0) // no supplementary groups
  w.u32(1) // AUTH_SYS
  w.opaque(credential.bytes())
  w.u32(0) // verifier AUTH_NONE
  w.u32(0)
  args(w)
  return recordOf(Buffer.from(w.bytes()))
}

export interface ParsedReply {
  xid: number
  /** 0 MSG_ACCEPTED, 1 MSG_DENIED */
  replyStat: number
  /** accept_stat, or reject_stat when denied */
  stat: number
  /** Positioned at the procedure results. */
  body: XdrReader
}

/** Parses a reply record (without its record mark). */
export function parseReply(record: Buffer): ParsedReply {
  const r = new XdrReader(record, 0)
  const xid = r.u32()
  r.u32() // REPLY
  const replyStat = r.u32()
  if (replyStat !== 0) return { xid, replyStat, stat: r.u32(), body: r }
  r.u32() // verifier flavor
  r.opaque(400)
  return { xid, replyStat, stat: r.u32(), body: r }
}

/**
 * A client program for `node -e`: connects to argv host and port, sends each record of argv (hex)
 * and waits for its reply, printing one JSON line per record: {reply: hex}, or {closed: true} when
 * the server closes or resets the connection first, or {error} when it cannot connect.
 */
const RAW_CLIENT_SCRIPT = `
const net = require('node:net')
const [host, port, ...records] = process.argv.slice(1)
const socket = net.connect({ host, port: Number(port) })
let buffered = Buffer.alloc(0)
let waiting = null
let closed = false
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timed out' })); process.exit(0) }, 10000)
socket.on('data', (chunk) => {
  buffered = Buffer.concat([buffered, chunk])
  if (buffered.length < 4) return
  const length = buffered.readUInt32BE(0) & 0x7fffffff
  if (buffered.length < 4 + length) return
  const record = buffered.subarray(4, 4 + length)
  buffered = buffered.subarray(4 + length)
  if (waiting) waiting(record)
})
socket.on('error', (error) => {
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return
  console.log(JSON.stringify({ error: error.message }))
  process.exit(0)
})
socket.on('close', () => { closed = true; if (waiting) waiting(null) })
socket.on('connect', async () => {
  for (const hex of records) {
    if (closed) { console.log(JSON.stringify({ closed: true })); continue }
    const reply = await new Promise((resolve) => { waiting = resolve; socket.write(Buffer.from(hex, 'hex')) })
    waiting = null
    console.log(JSON.stringify(reply === null ? { closed: true } : { reply: reply.toString('hex') }))
  }
  clearTimeout(timer)
  socket.destroy()
})
`

export interface RawOutcome {
  reply?: ParsedReply
  closed?: boolean
  error?: string
}

/** Runs the raw client inside network namespace `netns` and returns one outcome per record. */
export function runRawClient(netns: string, host: string, port: number, records: Buffer[]): Promise<RawOutcome[]> {
  const args = ['netns', 'exec', netns, process.execPath, '-e', RAW_CLIENT_SCRIPT, host, String(port), ...records.map((record) => record.toString('hex'))]
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`raw client in ${netns} failed: ${error.message}; ${stderr}`))
        return
      }
      const outcomes = stdout
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => {
          const parsed = JSON.parse(line) as { reply?: string; closed?: boolean; error?: string }
          if (parsed.reply !== undefined) return { reply: parseReply(Buffer.from(parsed.reply, 'hex')) }
          return parsed as RawOutcome
        })
      resolve(outcomes)
    })
  })
}

/** Runs a command and rejects with its output when it fails. */
export function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || error.message}`))
      else resolve(stdout)
    })
  })
}

/** A node running as the aegis-node command inside a network namespace. */
export interface NetnsNode {
  process: ChildProcess
  stop(): Promise<void>
}

/**
 * Runs `aegis-node serve --config configPath` inside network namespace `netns`, loading the
 * TypeScript sources through Vite's module runner (as vitest does), and resolves once it listens.
 */
export function startNodeInNetns(netns: string, configPath: string): Promise<NetnsNode> {
  const runner = `const { runnerImport } = await import('vite'); await runnerImport(${JSON.stringify(path.join(REPOSITORY_ROOT, 'src/cli/main.ts'))}, { configFile: false, root: process.cwd(), logLevel: 'silent' })`
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', runner, 'serve', '--config', configPath, '--log-level', 'info'], {
    cwd: REPOSITORY_ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve()
        return
      }
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })

  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`aegis-node in ${netns} did not start within 30 s; output: ${output.slice(-2000)}`))
    }, 30_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (output.includes('NFS (MOUNT and NFSv3) listening')) {
        clearTimeout(timer)
        resolve({ process: child, stop })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`aegis-node in ${netns} exited with code ${code}; output: ${output.slice(-2000)}`))
    })
  })
}
