// Runs a test server (s3rver, rclone) as a child process on loopback: starts it, reads its address
// from the line it prints once it listens, waits until it responds to HTTP, and stops it. Children still
// running when the test process exits are killed, so a failed or aborted run leaves none behind.

import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

const STOP_GRACE_MS = 5_000
const DEFAULT_START_TIMEOUT_MS = 30_000
/** Output kept for error messages. */
const OUTPUT_TAIL_CHARS = 4_000

export interface ChildServerOptions {
  /** Used in error messages. */
  name: string
  command: string
  args: readonly string[]
  env?: NodeJS.ProcessEnv
  /** Returns the server's base URL from everything it printed so far, or null until it has printed it. */
  addressFrom(output: string): string | null
  startTimeoutMs?: number
}

export interface ChildServer {
  /** Base URL, always on 127.0.0.1. */
  url: string
  process: ChildProcess
  /** The tail of what the server printed, for failure messages. */
  output(): string
  /** Stops the server (SIGTERM, then SIGKILL) and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>
}

const liveChildren = new Set<ChildProcess>()
let exitHookInstalled = false

function track(child: ChildProcess): void {
  liveChildren.add(child)
  child.once('exit', () => liveChildren.delete(child))
  if (exitHookInstalled) return
  exitHookInstalled = true
  // An exit handler runs synchronously, so it can only send the signal, not wait for the exit.
  process.once('exit', () => {
    for (const live of liveChildren) live.kill('SIGKILL')
  })
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return true
  return Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(timeoutMs).then(() => hasExited(child))
  ])
}

async function terminate(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return
  child.kill('SIGTERM')
  if (await waitForExit(child, STOP_GRACE_MS)) return
  child.kill('SIGKILL')
  await waitForExit(child, STOP_GRACE_MS)
}

/** Resolves true when `url` responds to HTTP at all. Any status counts, because the request is not signed. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: 1_000 }, (response) => {
      response.resume()
      resolve(true)
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve(false))
  })
}

/** Starts the server and resolves once it responds to HTTP on the address it printed. */
export async function startChildServer(options: ChildServerOptions): Promise<ChildServer> {
  const child = spawn(options.command, [...options.args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env })
  track(child)
  let output = ''
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS)
  }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  let spawnError: Error | undefined
  child.once('error', (error) => {
    spawnError = error
  })

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => (stopped ??= terminate(child))
  const fail = async (reason: string): Promise<never> => {
    await stop()
    throw new Error(`${options.name}: ${reason}\nOutput:\n${output}`)
  }

  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  const deadline = Date.now() + timeoutMs
  let url: string | null = null
  for (;;) {
    if (spawnError !== undefined) return fail(`failed to run ${options.command}: ${spawnError.message}`)
    if (hasExited(child)) return fail(`exited during startup (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`)
    url ??= options.addressFrom(output)
    if (url !== null) {
      const { hostname } = new URL(url)
      if (hostname !== '127.0.0.1') return fail(`listens on ${hostname}, not on 127.0.0.1`)
      if (await answers(url)) break
    }
    if (Date.now() > deadline) return fail(`did not respond to HTTP within ${timeoutMs} ms`)
    await sleep(50)
  }

  return { url, process: child, output: () => output, stop }
}
