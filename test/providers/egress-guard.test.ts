// The proxy that OpenDAL's HTTP requests pass through: forwarding, tunnels, credentials, and the
// rejection of metadata services, with a local upstream server and a stubbed resolver.

import http from 'node:http'
import net from 'node:net'

import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { EgressGuard } from '../../src/providers/opendal/egress-guard.js'

const logged: string[] = []
const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) })
let upstream: http.Server
let upstreamPort: number
const upstreamRequests: string[] = []
let guard: EgressGuard
let proxy: URL
const lookups: string[] = []

// Names the stub resolver maps: one leads to the upstream, one to a metadata address.
const names: Record<string, string> = { 'storage.test': '127.0.0.1', 'sneaky.test': '169.254.169.254' }

beforeAll(async () => {
  upstream = http.createServer((request, response) => {
    upstreamRequests.push(`${request.method} ${request.url} host=${request.headers.host} proxy-auth=${request.headers['proxy-authorization'] ?? 'none'}`)
    request.resume()
    response.end('from upstream')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  upstreamPort = (upstream.address() as net.AddressInfo).port
  guard = new EgressGuard({
    logger,
    allowMetadata: false,
    lookup: async (hostname) => {
      lookups.push(hostname)
      const address = names[hostname]
      if (address === undefined) throw new Error(`${hostname} not found`)
      return [{ address }]
    }
  })
  proxy = new URL(await guard.start())
})

afterAll(async () => {
  await guard.stop()
  await new Promise<void>((resolve) => upstream.close(() => resolve()))
})

function credentials(): string {
  return 'Basic ' + Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')
}

/** Sends an absolute-form request to the proxy, as an HTTP client with a proxy does. */
function viaProxy(target: string, authorization: string | null): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: new URL(target).host }
    if (authorization !== null) headers['proxy-authorization'] = authorization
    const request = http.request({ host: '127.0.0.1', port: Number(proxy.port), path: target, headers }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    request.on('error', reject)
    request.end()
  })
}

/** Sends CONNECT and returns the status line, and the socket when the tunnel is open. */
function connect(authority: string, authorization: string | null): Promise<{ status: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(proxy.port), '127.0.0.1', () => {
      const auth = authorization === null ? '' : `Proxy-Authorization: ${authorization}\r\n`
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`)
    })
    let received = ''
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('latin1')
      if (!received.includes('\r\n\r\n')) return
      socket.off('data', onData)
      resolve({ status: received.slice(0, received.indexOf('\r\n')), socket })
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

describe('egress guard', () => {
  it('forwards plain HTTP requests', async () => {
    const reply = await viaProxy(`http://storage.test:${upstreamPort}/bucket/key?list-type=2`, credentials())
    expect(reply).toEqual({ status: 200, body: 'from upstream' })
    expect(upstreamRequests.at(-1)).toBe(`GET /bucket/key?list-type=2 host=storage.test:${upstreamPort} proxy-auth=none`)
  })

  it('tunnels CONNECT', async () => {
    const { status, socket } = await connect(`127.0.0.1:${upstreamPort}`, credentials())
    expect(status).toBe('HTTP/1.1 200 Connection Established')
    const body = await new Promise<string>((resolve) => {
      let text = ''
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
      socket.on('end', () => resolve(text))
      socket.write('GET /through-tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    })
    expect(body).toContain('from upstream')
    expect(upstreamRequests.at(-1)).toContain('GET /through-tunnel')
  })

  it('rejects missing credentials', async () => {
    const before = upstreamRequests.length
    expect((await viaProxy(`http://127.0.0.1:${upstreamPort}/x`, null)).status).toBe(407)
    expect((await viaProxy(`http://127.0.0.1:${upstreamPort}/x`, 'Basic d3Jvbmc6d3Jvbmc=')).status).toBe(407)
    const tunnel = await connect(`127.0.0.1:${upstreamPort}`, null)
    tunnel.socket.destroy()
    expect(tunnel.status).toBe('HTTP/1.1 407 Proxy Authentication Required')
    expect(upstreamRequests.length).toBe(before)
  })

  it('rejects metadata hosts', async () => {
    const before = { requests: upstreamRequests.length, rejected: guard.rejectedCount }
    const cases = [`http://169.254.169.254:${upstreamPort}/latest/meta-data/`, `http://[fd00:ec2::254]:${upstreamPort}/`, `http://metadata.google.internal:${upstreamPort}/`]
    for (const target of cases) {
      // Rejected with or without credentials: a redirect arrives without them.
      expect((await viaProxy(target, null)).status, target).toBe(403)
      expect((await viaProxy(target, credentials())).status, target).toBe(403)
    }
    const tunnel = await connect(`169.254.169.254:443`, null)
    tunnel.socket.destroy()
    expect(tunnel.status).toBe('HTTP/1.1 403 Forbidden')
    expect(guard.rejectedCount).toBe(before.rejected + 2 * cases.length + 1)
    expect(upstreamRequests.length).toBe(before.requests)
  })

  it('logs an unreachable server once', async () => {
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))

    const first = await viaProxy(`http://127.0.0.1:${port}/bucket`, credentials())
    const second = await viaProxy(`http://127.0.0.1:${port}/bucket`, credentials())
    expect(first.status).toBe(502)
    expect(second.status).toBe(502)
    const lines = logged.filter((line) => line.includes('storage server unreachable') && line.includes(`"port":${port}`))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('ECONNREFUSED')
  })

  it('rejects names resolving to metadata', async () => {
    const before = upstreamRequests.length
    const reply = await viaProxy(`http://sneaky.test:${upstreamPort}/`, credentials())
    expect(reply.status).toBe(403)
    expect(reply.body).toContain('resolves to 169.254.169.254')
    const tunnel = await connect(`sneaky.test:${upstreamPort}`, credentials())
    tunnel.socket.destroy()
    expect(tunnel.status).toBe('HTTP/1.1 403 Forbidden')
    expect(lookups.filter((name) => name === 'sneaky.test')).toHaveLength(2)
    expect(upstreamRequests.length).toBe(before)
  })
})
