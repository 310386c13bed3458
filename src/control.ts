// The control socket: a Unix socket in the data directory through which `aegis-node mesh peers`
// and `aegis-node mesh volumes` query the running node's view of the mesh. Only the node's own
// user can open it (mode 0600). Each query is one JSON line and gets one JSON line back.

import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type { Logger } from 'pino'

export const CONTROL_SOCKET = 'control.sock'
const MAX_REQUEST_BYTES = 4096
const CLIENT_TIMEOUT_MS = 5_000

export type ControlHandler = () => unknown

export class ControlServer {
  private server: net.Server | null = null
  readonly socketPath: string

  constructor(
    dataDir: string,
    private readonly handlers: Record<string, ControlHandler>,
    private readonly logger: Logger
  ) {
    this.socketPath = path.join(dataDir, CONTROL_SOCKET)
  }

  async listen(): Promise<void> {
    // The data directory lock is held, so a socket file left here belongs to a node that died.
    fs.rmSync(this.socketPath, { force: true })
    const server = net.createServer((socket) => this.serve(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.socketPath, () => resolve())
    })
    fs.chmodSync(this.socketPath, 0o600)
    this.server = server
  }

  private serve(socket: net.Socket): void {
    let received = ''
    socket.setTimeout(CLIENT_TIMEOUT_MS, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8')
      if (received.length > MAX_REQUEST_BYTES) return socket.destroy()
      const end = received.indexOf('\n')
      if (end < 0) return
      let answer: unknown
      try {
        const request = JSON.parse(received.slice(0, end)) as { command?: unknown }
        const handler = typeof request.command === 'string' ? this.handlers[request.command] : undefined
        answer = handler === undefined ? { error: `unknown command ${JSON.stringify(request.command)}; known: ${Object.keys(this.handlers).join(', ')}` } : { result: handler() }
      } catch (error) {
        this.logger.warn({ err: error }, 'bad request on the control socket')
        answer = { error: `the request is not a JSON line: ${(error as Error).message}` }
      }
      socket.end(JSON.stringify(answer) + '\n')
    })
  }

  async close(): Promise<void> {
    if (this.server === null) return
    await new Promise<void>((resolve) => this.server!.close(() => resolve()))
    fs.rmSync(this.socketPath, { force: true })
    this.server = null
  }
}

/** Thrown when no node responds on the control socket. The message explains how to start one. */
export class ControlUnavailable extends Error {
  override name = 'ControlUnavailable'
}

/** Sends one command to the node running on `dataDir` and returns its result. */
export async function askNode(dataDir: string, command: string): Promise<unknown> {
  const socketPath = path.join(dataDir, CONTROL_SOCKET)
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath)
    let received = ''
    socket.setTimeout(CLIENT_TIMEOUT_MS, () => {
      socket.destroy()
      reject(new ControlUnavailable(`the node on ${dataDir} did not answer within ${CLIENT_TIMEOUT_MS} ms`))
    })
    socket.on('connect', () => socket.write(JSON.stringify({ command }) + '\n'))
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')))
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(new ControlUnavailable(`no mesh node is running on data directory ${dataDir} (no control socket at ${socketPath}); start one with aegis-node serve, or give its --config or --data-dir`))
      } else if (error.code === 'ECONNREFUSED') {
        reject(new ControlUnavailable(`no node listens on ${socketPath}: the node that made it has stopped; start it again with aegis-node serve`))
      } else reject(error)
    })
    socket.on('end', () => {
      try {
        const answer = JSON.parse(received) as { result?: unknown; error?: string }
        if (answer.error !== undefined) reject(new ControlUnavailable(answer.error))
        else resolve(answer.result)
      } catch {
        reject(new ControlUnavailable(`the node on ${dataDir} sent an answer that is not JSON`))
      }
    })
  })
}
