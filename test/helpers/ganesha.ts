/**
 * Starts Debian's NFS-Ganesha (ganesha.nfsd with the VFS FSAL) as a reference
 * NFSv3 server for tests and benchmarks.
 *
 * Facts about Ganesha 4.3 (Debian 12) that shape this helper:
 * - It registers NFS and MOUNT with rpcbind at startup and exits when that
 *   fails, and no configuration option skips the registration. When nothing
 *   accepts connections on /run/rpcbind.sock, this helper starts rpcbind in
 *   a private network namespace (`unshare --net rpcbind -f`). Ganesha reaches
 *   it through the Unix socket, and its TCP/UDP listeners stay invisible to
 *   the host network.
 * - MOUNT cannot share the NFS port: with MNT_Port equal to NFS_Port, Ganesha
 *   replies PROG_UNAVAIL to MOUNT calls. The server therefore listens on two
 *   loopback ports, `port` (NFS) and `mountPort` (MOUNT).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

export interface GaneshaOptions {
  /** Directory to export; it must exist. */
  exportDir: string
  /** TCP port for NFS on 127.0.0.1; a free port is chosen when omitted or 0. */
  port?: number
  /** TCP port for MOUNT on 127.0.0.1; a free port is chosen when omitted or 0. */
  mountPort?: number
  /** Ganesha log level passed to -N (default NIV_EVENT). */
  logLevel?: string
  /** Maximum time to wait for the server to accept connections (default 30 s). */
  startTimeoutMs?: number
  /** Keep the config, log and recovery directory after stop() (default false). */
  keepWorkDir?: boolean
}

export interface GaneshaServer {
  /** NFS port on 127.0.0.1. */
  port: number
  /** MOUNT port on 127.0.0.1. */
  mountPort: number
  /** Absolute path of the export, as a MOUNT request names it. */
  exportPath: string
  /** Directory holding ganesha.conf, ganesha.log, the pid file and recovery data. */
  workDir: string
  logFile: string
  pid: number
  /** Builds an nfs:// URL for a path inside the export, with both ports set. */
  url(pathInExport?: string): string
  /** Last lines of the Ganesha log, for failure messages. */
  logTail(lines?: number): string
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it to exit. */
  stop(): Promise<void>
}

const GANESHA_BINARY_CANDIDATES = ['/usr/bin/ganesha.nfsd', '/usr/sbin/ganesha.nfsd']
const PLUGIN_DIR_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/ganesha',
  '/usr/lib/aarch64-linux-gnu/ganesha',
  '/usr/lib/ganesha',
  '/usr/lib64/ganesha'
]
const RPCBIND_SOCKET = '/run/rpcbind.sock'
const RPCBIND_BINARY_CANDIDATES = ['/usr/sbin/rpcbind', '/sbin/rpcbind']
const STOP_GRACE_MS = 10_000
const START_ATTEMPTS = 3

function findExisting(candidates: string[]): string | undefined {
  return candidates.find((candidate) => fs.existsSync(candidate))
}

function findGaneshaBinary(): string {
  const binary = findExisting(GANESHA_BINARY_CANDIDATES)
  if (binary === undefined) {
    throw new Error(
      'ganesha.nfsd not found in /usr/bin or /usr/sbin; install it with: ' +
        'apt-get install nfs-ganesha nfs-ganesha-vfs'
    )
  }
  return binary
}

function findPluginDir(): string {
  const dir = PLUGIN_DIR_CANDIDATES.find((candidate) =>
    fs.existsSync(path.join(candidate, 'libfsalvfs.so'))
  )
  if (dir === undefined) {
    throw new Error(
      `Ganesha VFS FSAL (libfsalvfs.so) not found in ${PLUGIN_DIR_CANDIDATES.join(', ')}; ` +
        'install it with: apt-get install nfs-ganesha-vfs'
    )
  }
  return dir
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export async function findFreePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error('listening on 127.0.0.1:0 returned no port'))
        return
      }
      server.close(() => resolve(address.port))
    })
  })
}

function canConnect(options: net.NetConnectOpts, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(options)
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit)
      resolve(false)
    }, timeoutMs)
    const onExit = (): void => {
      clearTimeout(timer)
      resolve(true)
    }
    child.once('exit', onExit)
  })
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  if (await waitForExit(child, STOP_GRACE_MS)) return
  child.kill('SIGKILL')
  await waitForExit(child, STOP_GRACE_MS)
}

// Children still running when this process exits are killed, so an aborted
// test run leaves no server behind.
const liveChildren = new Set<ChildProcess>()
let exitHookInstalled = false

function track(child: ChildProcess): void {
  liveChildren.add(child)
  child.once('exit', () => liveChildren.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const live of liveChildren) live.kill('SIGKILL')
    })
  }
}

// rpcbind started by this process, shared by all Ganesha instances it runs.
let ownedRpcbind: ChildProcess | undefined
let rpcbindUsers = 0

async function acquireRpcbind(): Promise<void> {
  rpcbindUsers++
  try {
    if (await canConnect({ path: RPCBIND_SOCKET })) return
    if (ownedRpcbind !== undefined && ownedRpcbind.exitCode === null) {
      // Started by an earlier call but not accepting yet; wait for it below.
    } else {
      ownedRpcbind = startRpcbind()
    }
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      if (await canConnect({ path: RPCBIND_SOCKET })) return
      if (ownedRpcbind.exitCode !== null) break
      await sleep(50)
    }
    throw new Error(
      `rpcbind did not start listening on ${RPCBIND_SOCKET} ` +
        `(exit code ${String(ownedRpcbind.exitCode)}); Ganesha 4.3 cannot start without it`
    )
  } catch (error) {
    await releaseRpcbind()
    throw error
  }
}

function startRpcbind(): ChildProcess {
  const rpcbind = findExisting(RPCBIND_BINARY_CANDIDATES)
  if (rpcbind === undefined) {
    throw new Error(
      'rpcbind not found and none is running; Ganesha 4.3 exits when it cannot register ' +
        'with rpcbind. Install it with: apt-get install rpcbind'
    )
  }
  // The private network namespace keeps rpcbind's port 111 listeners off the
  // host; Ganesha registers through the Unix socket, which the namespaces share.
  const child = spawn('unshare', ['--net', rpcbind, '-f'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) {
      process.stderr.write(`rpcbind exited with code ${code}: ${stderr}\n`)
    }
  })
  child.once('error', (error) => {
    process.stderr.write(`failed to start rpcbind via unshare: ${error.message}\n`)
  })
  track(child)
  return child
}

async function releaseRpcbind(): Promise<void> {
  rpcbindUsers--
  if (rpcbindUsers > 0 || ownedRpcbind === undefined) return
  const child = ownedRpcbind
  ownedRpcbind = undefined
  await terminate(child)
}

function quoteConfigString(value: string, what: string): string {
  if (/["\n\\]/.test(value)) {
    throw new Error(`${what} '${value}' contains a quote, backslash or newline, which ganesha.conf cannot hold`)
  }
  return `"${value}"`
}

function buildConfig(params: {
  exportPath: string
  port: number
  mountPort: number
  pluginDir: string
  recoveryDir: string
}): string {
  return `# Generated for one test run; NFSv3 over TCP on loopback only.
NFS_CORE_PARAM {
  Protocols = 3;
  NFS_Port = ${params.port};
  MNT_Port = ${params.mountPort};
  Bind_addr = 127.0.0.1;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Enable_UDP = false;
  Plugins_Dir = ${quoteConfigString(params.pluginDir, 'plugin directory')};
}

NFS_KRB5 {
  Active_krb5 = false;
}

NFSv4 {
  # NFSv4 is disabled above; these keep its recovery files out of /var/lib.
  Graceless = true;
  RecoveryBackend = fs;
  RecoveryRoot = ${quoteConfigString(params.recoveryDir, 'recovery directory')};
}

EXPORT {
  Export_Id = 1;
  Path = ${quoteConfigString(params.exportPath, 'export path')};
  Pseudo = "/aegis-export";
  Protocols = 3;
  Transports = TCP;
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  FSAL {
    Name = VFS;
  }
}
`
}

function readTail(file: string, lines: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8')
    return text.split('\n').slice(-lines - 1).join('\n')
  } catch {
    return '(no log file)'
  }
}

class GaneshaStartError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean
  ) {
    super(message)
  }
}

/**
 * Starts ganesha.nfsd exporting exportDir over NFSv3/TCP on 127.0.0.1, and
 * resolves once both the NFS and the MOUNT port accept connections.
 * Root squashing is off, so a client running as root acts as root.
 */
export async function startGanesha(options: GaneshaOptions): Promise<GaneshaServer> {
  const binary = findGaneshaBinary()
  const pluginDir = findPluginDir()
  const exportPath = fs.realpathSync(options.exportDir)
  if (!fs.statSync(exportPath).isDirectory()) {
    throw new Error(`export directory '${options.exportDir}' is not a directory`)
  }

  await acquireRpcbind()
  let lastError: Error | undefined
  try {
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      try {
        return await startOnce(binary, pluginDir, exportPath, options)
      } catch (error) {
        if (!(error instanceof GaneshaStartError) || !error.retryable) throw error
        // Another process may have taken an automatically chosen port, or
        // registered with rpcbind at the same moment. Both are transient.
        lastError = error
      }
    }
    throw lastError ?? new Error('Ganesha failed to start')
  } catch (error) {
    await releaseRpcbind()
    throw error
  }
}

async function startOnce(
  binary: string,
  pluginDir: string,
  exportPath: string,
  options: GaneshaOptions
): Promise<GaneshaServer> {
  const port = options.port !== undefined && options.port !== 0 ? options.port : await findFreePort()
  let mountPort = options.mountPort ?? 0
  while (mountPort === 0 || mountPort === port) mountPort = await findFreePort()
  const portsChosenHere = !options.port || !options.mountPort

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-ganesha-'))
  const configFile = path.join(workDir, 'ganesha.conf')
  const logFile = path.join(workDir, 'ganesha.log')
  const pidFile = path.join(workDir, 'ganesha.pid')
  const recoveryDir = path.join(workDir, 'recovery')
  fs.mkdirSync(recoveryDir)
  fs.writeFileSync(configFile, buildConfig({ exportPath, port, mountPort, pluginDir, recoveryDir }))

  const child = spawn(
    binary,
    ['-F', '-f', configFile, '-L', logFile, '-p', pidFile, '-N', options.logLevel ?? 'NIV_EVENT'],
    { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  track(child)
  let output = ''
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  let spawnError: Error | undefined
  child.once('error', (error) => {
    spawnError = error
  })

  const removeWorkDir = (): void => {
    if (!options.keepWorkDir) fs.rmSync(workDir, { recursive: true, force: true })
  }

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000)
  for (;;) {
    if (spawnError !== undefined) {
      removeWorkDir()
      throw new GaneshaStartError(`failed to run ${binary}: ${spawnError.message}`, false)
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readTail(logFile, 15)
      removeWorkDir()
      const retryable =
        /Cannot register/i.test(log) ||
        (portsChosenHere && /Cannot bind|Address already in use/i.test(log))
      throw new GaneshaStartError(
        `ganesha.nfsd exited during startup (code ${String(child.exitCode)}, ` +
          `signal ${String(child.signalCode)}).\nLog tail:\n${log}\nOutput:\n${output}`,
        retryable
      )
    }
    const initialized = readTail(logFile, 200).includes('NFS SERVER INITIALIZED')
    if (
      initialized &&
      (await canConnect({ host: '127.0.0.1', port })) &&
      (await canConnect({ host: '127.0.0.1', port: mountPort }))
    ) {
      break
    }
    if (Date.now() > deadline) {
      const log = readTail(logFile, 15)
      await terminate(child)
      removeWorkDir()
      throw new GaneshaStartError(
        `ganesha.nfsd did not accept connections on 127.0.0.1:${port} (NFS) and ` +
          `127.0.0.1:${mountPort} (MOUNT) within ${options.startTimeoutMs ?? 30_000} ms.\n` +
          `Log tail:\n${log}`,
        false
      )
    }
    await sleep(100)
  }

  let stopped: Promise<void> | undefined
  return {
    port,
    mountPort,
    exportPath,
    workDir,
    logFile,
    pid: child.pid ?? -1,
    url(pathInExport = ''): string {
      const suffix = pathInExport.replace(/^\/+/, '')
      const fullPath = suffix === '' ? exportPath : `${exportPath}/${suffix}`
      return `nfs://127.0.0.1${fullPath}?nfsport=${port}&mountport=${mountPort}`
    },
    logTail(lines = 20): string {
      return readTail(logFile, lines)
    },
    stop(): Promise<void> {
      stopped ??= (async () => {
        await terminate(child)
        removeWorkDir()
        await releaseRpcbind()
      })()
      return stopped
    }
  }
}
