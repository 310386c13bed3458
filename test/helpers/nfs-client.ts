/**
 * Drives real NFSv3 clients from tests and benchmarks: the libnfs-based
 * test/native/bin/aegis-nfs (script and bench modes) and Debian's libnfs-utils
 * tools nfs-cp, nfs-cat and nfs-ls.
 */
import { execFileSync, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const nativeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'native')
const clientSource = path.join(nativeDir, 'nfsclient.c')
const buildScript = path.join(nativeDir, 'build.sh')

/** Path of the compiled libnfs test client. */
export const NFS_CLIENT_BINARY = path.join(nativeDir, 'bin', 'aegis-nfs')

const DEFAULT_SCRIPT_TIMEOUT_MS = 60_000
const DEFAULT_TOOL_TIMEOUT_MS = 60_000
const MAX_STDERR_CHARS = 8000

/** One parsed JSON line of script mode: `ok` plus command-specific fields. */
export type NfsResult = Record<string, unknown>

/** Failure of the client process itself: mount failure, crash, timeout or bad output. */
export class NfsClientError extends Error {
  constructor(
    message: string,
    readonly details: {
      exitCode: number | null
      signal: NodeJS.Signals | null
      stderr: string
      /** Lines parsed before the failure; a mount failure is one line with stage "mount". */
      results: NfsResult[]
    }
  ) {
    super(message)
    this.name = 'NfsClientError'
  }
}

/**
 * Builds test/native/bin/aegis-nfs when it is missing or older than
 * nfsclient.c, and returns its path. Throws with the build output when the
 * compiler or libnfs-dev is missing.
 */
export function ensureNfsClientBuilt(): string {
  const sourceTime = fs.statSync(clientSource).mtimeMs
  let binaryTime = -1
  try {
    binaryTime = fs.statSync(NFS_CLIENT_BINARY).mtimeMs
  } catch {
    // Missing binary: build below.
  }
  if (binaryTime >= sourceTime) return NFS_CLIENT_BINARY

  try {
    execFileSync('bash', [buildScript], { stdio: 'pipe', timeout: 120_000 })
  } catch (error) {
    const failure = error as { stderr?: Buffer; stdout?: Buffer; message: string }
    const output = `${failure.stdout?.toString() ?? ''}${failure.stderr?.toString() ?? ''}`.trim()
    throw new Error(`building the NFS test client with ${buildScript} failed:\n${output || failure.message}`)
  }
  return NFS_CLIENT_BINARY
}

interface ProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
  timedOut: boolean
}

/** Runs a program with optional stdin, killing it with SIGKILL after timeoutMs. */
function runProcess(
  command: string,
  args: string[],
  options: { input?: string; timeoutMs: number; missingHint: string }
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const stdout: Buffer[] = []
    let stderr = ''
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, options.timeoutMs)

    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-MAX_STDERR_CHARS)
    })
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (error.code === 'ENOENT') {
        reject(new Error(`${command} not found; ${options.missingHint}`))
      } else {
        reject(new Error(`failed to run ${command}: ${error.message}`))
      }
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr, timedOut })
    })
    // The child may exit before reading all input (for example after a failed
    // mount). The resulting EPIPE is expected, and the exit status reports the cause.
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}

function parseJsonLines(stdout: Buffer): { results: NfsResult[]; badLine?: string } {
  const results: NfsResult[] = []
  for (const line of stdout.toString('utf8').split('\n')) {
    if (line === '') continue
    try {
      results.push(JSON.parse(line) as NfsResult)
    } catch {
      return { results, badLine: line }
    }
  }
  return { results }
}

export interface NfsScriptOptions {
  /** Kill the client after this many milliseconds (default 60000). */
  timeoutMs?: number
  /** libnfs RPC timeout in whole seconds (client default 30). */
  rpcTimeoutSeconds?: number
}

/**
 * Mounts url with the libnfs test client and runs commands in that one
 * session, returning one result per command in order. A failing NFS call is
 * a result with ok:false, errno and error. The promise rejects with an
 * NfsClientError only when the client cannot mount, crashes, times out or
 * prints a line that is not JSON.
 *
 * Arguments must not contain TAB or newline characters, because the client
 * reads TAB-separated lines.
 */
export async function runNfsScript(
  url: string,
  commands: string[][],
  options: NfsScriptOptions = {}
): Promise<NfsResult[]> {
  for (const [index, command] of commands.entries()) {
    if (command.length === 0 || command[0] === '') {
      throw new TypeError(`command ${index} is empty`)
    }
    const bad = command.find((arg) => /[\t\n]/.test(arg))
    if (bad !== undefined) {
      throw new TypeError(
        `argument ${JSON.stringify(bad)} of command ${index} contains a TAB or newline, ` +
          'which the line-based script format cannot carry'
      )
    }
  }

  const binary = ensureNfsClientBuilt()
  const args = options.rpcTimeoutSeconds !== undefined
    ? ['--timeout', String(options.rpcTimeoutSeconds), url]
    : [url]
  const timeoutMs = options.timeoutMs ?? DEFAULT_SCRIPT_TIMEOUT_MS
  const input = commands.map((command) => `${command.join('\t')}\n`).join('')
  const run = await runProcess(binary, args, {
    input,
    timeoutMs,
    missingHint: 'run test/native/build.sh'
  })
  const { results, badLine } = parseJsonLines(run.stdout)
  const details = { exitCode: run.code, signal: run.signal, stderr: run.stderr, results }

  if (run.timedOut) {
    throw new NfsClientError(
      `aegis-nfs timed out after ${timeoutMs} ms with ${results.length} of ${commands.length} ` +
        `commands answered (url ${url})`,
      details
    )
  }
  if (badLine !== undefined) {
    throw new NfsClientError(`aegis-nfs printed a line that is not JSON: ${badLine}`, details)
  }
  if (run.code !== 0) {
    const first = results[0]
    const reason = first !== undefined && first.ok === false && typeof first.stage === 'string'
      ? `${String(first.error)} (errno ${String(first.errno)})`
      : `exit code ${String(run.code)}, signal ${String(run.signal)}, stderr: ${run.stderr.trim()}`
    throw new NfsClientError(`aegis-nfs failed for ${url}: ${reason}`, details)
  }
  if (results.length !== commands.length) {
    throw new NfsClientError(
      `aegis-nfs answered ${results.length} of ${commands.length} commands (url ${url})`,
      details
    )
  }
  return results
}

export type NfsBenchOp = 'read' | 'write' | 'getattr' | 'lookup' | 'create' | 'readdirplus'

export interface NfsBenchOptions {
  /** File (read, write, getattr) or directory (lookup, create, readdirplus) inside the export. */
  path?: string
  /** Bytes to write; for read, bytes to read (default: the file size). */
  size?: number
  /** Bytes per read or write request (client default 1 MiB). */
  chunk?: number
  /** Requests in flight at once (client default 4). */
  inflight?: number
  /** Duration of getattr/lookup/create/readdirplus; time limit of read/write. */
  seconds?: number
  /** Upper bound on requests issued. */
  maxOps?: number
  /** lookup: number of files stat'ed round-robin (client default 1000). */
  files?: number
  /** readdirplus: entries in the listed directory (client default 1000). */
  entries?: number
  /** getattr: stat the path each time instead of fstat on an open handle. */
  byPath?: boolean
  /** create: exclusive create. */
  exclusive?: boolean
  /** write: COMMIT at the end, inside the measured time (client default true). */
  fsync?: boolean
  /** libnfs RPC timeout in whole seconds (client default 30). */
  rpcTimeoutSeconds?: number
  /** Kill the client after this many milliseconds (default: seconds + 120 s). */
  timeoutMs?: number
}

export interface NfsBenchResult {
  op: NfsBenchOp
  ok: true
  ops: number
  bytes: number
  seconds: number
  opsPerSecond: number
  mibPerSecond: number
  inflight: number
  /** Most RPCs libnfs had outstanding at one time; shows the in-flight limit was reached. */
  peakQueueLength: number
  path: string
  size?: number
  chunk?: number
  /** read/write: false when the time limit stopped the transfer early. */
  complete?: boolean
  fsync?: boolean
  files?: number
  entries?: number
  entriesPerSecond?: number
}

/** Runs one bench op of the libnfs test client against url and returns its summary line. */
export async function runNfsBench(
  url: string,
  op: NfsBenchOp,
  options: NfsBenchOptions = {}
): Promise<NfsBenchResult> {
  const binary = ensureNfsClientBuilt()
  const args = ['--bench', url, op]
  const add = (flag: string, value: number | string | undefined): void => {
    if (value !== undefined) args.push(flag, String(value))
  }
  add('--path', options.path)
  add('--size', options.size)
  add('--chunk', options.chunk)
  add('--inflight', options.inflight)
  add('--seconds', options.seconds)
  add('--max-ops', options.maxOps)
  add('--files', options.files)
  add('--entries', options.entries)
  add('--timeout', options.rpcTimeoutSeconds)
  if (options.byPath) args.push('--by-path')
  if (options.exclusive) args.push('--excl')
  if (options.fsync === false) args.push('--no-fsync')

  const isTransfer = op === 'read' || op === 'write'
  const seconds = options.seconds ?? (isTransfer ? 300 : 5)
  const timeoutMs = options.timeoutMs ?? seconds * 1000 + 120_000
  const run = await runProcess(binary, args, {
    timeoutMs,
    missingHint: 'run test/native/build.sh'
  })
  const { results, badLine } = parseJsonLines(run.stdout)
  const details = { exitCode: run.code, signal: run.signal, stderr: run.stderr, results }
  const command = `aegis-nfs ${args.join(' ')}`

  if (run.timedOut) {
    throw new NfsClientError(`${command} timed out after ${timeoutMs} ms`, details)
  }
  if (badLine !== undefined) {
    throw new NfsClientError(`${command} printed a line that is not JSON: ${badLine}`, details)
  }
  const summary = results[0]
  if (run.code !== 0 || summary === undefined || summary.ok !== true) {
    const reason = summary !== undefined
      ? `${String(summary.error)} (errno ${String(summary.errno)})`
      : `exit code ${String(run.code)}, signal ${String(run.signal)}, stderr: ${run.stderr.trim()}`
    throw new NfsClientError(`${command} failed: ${reason}`, details)
  }
  return summary as unknown as NfsBenchResult
}

/** Outcome of one of Debian's libnfs-utils tools. */
export interface NfsToolResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
}

export interface NfsToolOptions {
  /** Kill the tool after this many milliseconds and reject (default 60000). */
  timeoutMs?: number
}

const LIBNFS_UTILS_HINT = 'install it with: apt-get install libnfs-utils'

async function runTool(tool: string, args: string[], options: NfsToolOptions): Promise<NfsToolResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS
  const run = await runProcess(tool, args, { timeoutMs, missingHint: LIBNFS_UTILS_HINT })
  if (run.timedOut) {
    throw new Error(`${tool} ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${run.stderr.trim()}`)
  }
  return { code: run.code, signal: run.signal, stdout: run.stdout, stderr: run.stderr }
}

/**
 * Copies with nfs-cp; src and dst are each a local path or an nfs:// URL.
 * nfs-cp mounts the directory that contains the remote file, so the server
 * must allow mounting that directory.
 */
export function nfsCp(src: string, dst: string, options: NfsToolOptions = {}): Promise<NfsToolResult> {
  return runTool('nfs-cp', [src, dst], options)
}

/** Prints a remote file with nfs-cat; like nfs-cp it mounts the file's parent directory. */
export function nfsCat(url: string, options: NfsToolOptions = {}): Promise<NfsToolResult> {
  return runTool('nfs-cat', [url], options)
}

/**
 * Lists a remote directory with nfs-ls. extraArgs may add -R or -s;
 * -D/--discovery is rejected because it probes the local networks for servers.
 */
export function nfsLs(
  url: string,
  extraArgs: string[] = [],
  options: NfsToolOptions = {}
): Promise<NfsToolResult> {
  if (extraArgs.some((arg) => arg === '--discovery' || /^-[A-Za-z]*D/.test(arg))) {
    return Promise.reject(new Error('nfs-ls discovery (-D) is not allowed: it probes networks beyond loopback'))
  }
  return runTool('nfs-ls', [...extraArgs, url], options)
}
