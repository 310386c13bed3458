// A forward proxy on loopback that every HTTP request of OpenDAL passes through. It keeps every
// request from cloud metadata services, which a storage server could otherwise reach through a
// redirect, because OpenDAL follows redirects. OpenDAL's HTTP client (reqwest)
// takes its proxy from HTTP_PROXY, HTTPS_PROXY and ALL_PROXY, read once per process when its
// first client is built, so routeOpendalThrough must run before the first operator is created.
//
// Plain HTTP requests arrive in absolute form and are forwarded; HTTPS requests arrive as
// CONNECT and become a tunnel. The proxy resolves each host itself, rejects it when any of its
// addresses is a metadata service, and connects to the address it checked, so a DNS answer
// that changes between the check and the connection cannot slip through. Requests must carry
// the proxy's random credentials, so other local processes cannot use it.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import { lookup as dnsLookup } from 'node:dns/promises'
import http from 'node:http'
import net from 'node:net'

import type { Logger } from 'pino'

import { isMetadataHost, type HostLookup } from '../../config/opendal.js'
import { RepeatLimiter } from '../../repeat-limiter.js'

/** Headers that describe one connection and are not forwarded (RFC 9110, section 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade'])
const PROXY_USER = 'aegis-node'

export interface EgressGuardOptions {
  logger: Logger
  /** Lets requests reach metadata services, for volumes that ask for the node's cloud identity. */
  allowMetadata: boolean
  /** Resolves host names; the system resolver by default. */
  lookup?: HostLookup
}

/** Thrown for a host the guard does not connect to. */
class Rejected extends Error {}

export class EgressGuard {
  private readonly server: http.Server
  private readonly password = randomBytes(24).toString('base64url')
  private readonly expectedAuthorization: Buffer
  private readonly lookup: HostLookup
  private readonly agent = new http.Agent({ keepAlive: true })
  private readonly tunnels = new Set<net.Socket>()
  private address: net.AddressInfo | null = null
  /** Requests rejected because their host is a metadata service. */
  rejectedCount = 0
  /** Requests rejected because they lack the proxy credentials. */
  unauthorizedCount = 0
  /** Unreachable storage servers logged, by host:port. */
  private readonly upstreamFailureLog = new RepeatLimiter(10_000, 1024)

  constructor(private readonly options: EgressGuardOptions) {
    this.lookup = options.lookup ?? ((hostname) => dnsLookup(hostname, { all: true }))
    this.expectedAuthorization = Buffer.from('Basic ' + Buffer.from(`${PROXY_USER}:${this.password}`).toString('base64'))
    this.server = http.createServer((request, response) => void this.forward(request, response))
    this.server.on('connect', (request: http.IncomingMessage, socket: net.Socket, head: Buffer) => void this.tunnel(request, socket, head))
    this.server.on('clientError', (_error, socket) => socket.destroy())
  }

  /** Starts listening on 127.0.0.1 and returns the proxy URL, credentials included. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.address = this.server.address() as net.AddressInfo
    return this.url
  }

  get url(): string {
    if (this.address === null) throw new Error('the egress guard is not started')
    return `http://${PROXY_USER}:${this.password}@127.0.0.1:${this.address.port}`
  }

  async stop(): Promise<void> {
    for (const socket of this.tunnels) socket.destroy()
    this.agent.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /**
   * Returns null when the request may go on, or the reason to reject it. A host that is a metadata
   * service by its name or literal address is rejected first, because a redirect arrives without
   * the proxy credentials: reqwest drops Proxy-Authorization when a redirect changes the host.
   */
  private admission(request: http.IncomingMessage, host: string, port: number): { status: 403 | 407; reason: string } | null {
    if (isMetadataHost(host) && !this.options.allowMetadata) {
      this.rejectMetadata(host, port, host, request)
      return { status: 403, reason: `${host} is a cloud metadata service or a link-local address` }
    }
    // NOTE: a redirect to https on another host arrives as CONNECT with the credentials, so it
    // passes unless that host is a metadata service.
    const presented = Buffer.from(request.headers['proxy-authorization'] ?? '')
    if (presented.length === this.expectedAuthorization.length && timingSafeEqual(presented, this.expectedAuthorization)) return null
    this.unauthorizedCount++
    this.options.logger.warn({ host, port, method: request.method }, 'request without the proxy credentials rejected; OpenDAL sends none after a redirect to another host')
    return { status: 407, reason: 'proxy credentials missing' }
  }

  /**
   * Logs a storage server the proxy could not reach, because OpenDAL reports only the proxy's
   * HTTP 502: one line per server every 10 s.
   */
  private logUpstreamFailure(host: string, port: number, error: Error): void {
    const suppressed = this.upstreamFailureLog.admit(`${host}:${port}`, Date.now())
    if (suppressed === null) return
    this.options.logger.warn({ host, port, reason: error.message, failedSinceLastLine: suppressed }, 'storage server unreachable; OpenDAL gets HTTP 502 from the egress proxy')
  }

  private rejectMetadata(host: string, port: number, address: string, request: http.IncomingMessage): void {
    this.rejectedCount++
    this.options.logger.warn({ host, port, address, method: request.method }, 'OpenDAL request to a cloud metadata service rejected; a storage server may have redirected there')
  }

  /** Resolves `host` and returns the address to connect to. Throws Rejected for a metadata service. */
  private async checkedAddress(host: string, port: number, request: http.IncomingMessage): Promise<string> {
    const addresses = net.isIP(host) !== 0 ? [host] : (await this.lookup(host)).map((entry) => entry.address)
    if (addresses.length === 0) throw new Error(`${host} has no address`)
    const metadata = addresses.find((address) => isMetadataHost(address))
    if (metadata !== undefined && !this.options.allowMetadata) {
      this.rejectMetadata(host, port, metadata, request)
      throw new Rejected(`${host} resolves to ${metadata}, a cloud metadata service or a link-local address`)
    }
    return addresses[0]!
  }

  /** Forwards a plain HTTP request, which a proxy receives with the absolute URL. */
  private async forward(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    let target: URL
    try {
      target = new URL(request.url ?? '')
      if (target.protocol !== 'http:') throw new Error('not http')
    } catch {
      response.writeHead(400).end(`only absolute http URLs are forwarded, not ${JSON.stringify(request.url)}`)
      return
    }
    const host = target.hostname.replace(/^\[|\]$/g, '')
    const port = Number(target.port || 80)
    const rejection = this.admission(request, host, port)
    if (rejection !== null) {
      response.writeHead(rejection.status, rejection.status === 407 ? { 'proxy-authenticate': 'Basic realm="aegis-node"' } : {}).end(rejection.reason)
      return
    }

    let address: string
    try {
      address = await this.checkedAddress(host, port, request)
    } catch (error) {
      response.writeHead(error instanceof Rejected ? 403 : 502).end((error as Error).message)
      return
    }

    const headers: http.OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(request.headers)) if (!HOP_BY_HOP.has(name)) headers[name] = value
    const upstream = http.request({ host: address, port, method: request.method, path: target.pathname + target.search, headers, agent: this.agent, setHost: false })
    upstream.on('response', (reply) => {
      const replyHeaders: http.OutgoingHttpHeaders = {}
      for (const [name, value] of Object.entries(reply.headers)) if (!HOP_BY_HOP.has(name)) replyHeaders[name] = value
      response.writeHead(reply.statusCode ?? 502, replyHeaders)
      reply.pipe(response)
    })
    upstream.on('error', (error) => {
      this.logUpstreamFailure(host, port, error)
      if (!response.headersSent) response.writeHead(502).end(error.message)
      else response.destroy(error)
    })
    // A client that goes away mid-request takes the upstream request with it.
    response.on('close', () => {
      if (!response.writableFinished) upstream.destroy()
    })
    request.pipe(upstream)
  }

  /** Opens a tunnel for CONNECT host:port, used for HTTPS. */
  private async tunnel(request: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy())
    const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(request.url ?? '')
    if (match === null) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')
      return
    }
    const host = match[1]!.replace(/^\[|\]$/g, '')
    const port = Number(match[2])
    const rejection = this.admission(request, host, port)
    if (rejection !== null) {
      const status = rejection.status === 407 ? '407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="aegis-node"' : '403 Forbidden'
      socket.end(`HTTP/1.1 ${status}\r\n\r\n`)
      return
    }

    let address: string
    try {
      address = await this.checkedAddress(host, port, request)
    } catch (error) {
      socket.end(`HTTP/1.1 ${error instanceof Rejected ? '403 Forbidden' : '502 Bad Gateway'}\r\n\r\n`)
      return
    }

    const upstream = net.connect({ host: address, port })
    let connected = false
    this.tunnels.add(socket)
    socket.on('close', () => {
      this.tunnels.delete(socket)
      upstream.destroy()
    })
    upstream.on('error', (error) => {
      if (!connected) this.logUpstreamFailure(host, port, error)
      if (connected) socket.destroy()
      else socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n')
    })
    upstream.on('connect', () => {
      connected = true
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
  }
}

/**
 * Points OpenDAL's HTTP client at `proxyUrl` for every request, replacing any proxy set in the environment.
 * NOTE: reqwest reads these variables once per process, when it builds its first client. An
 * operator created earlier in the same process keeps going direct.
 */
export function routeOpendalThrough(proxyUrl: string): void {
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) {
    process.env[name] = proxyUrl
    process.env[name.toLowerCase()] = proxyUrl
  }
  // NO_PROXY would let some hosts bypass the guard, and reqwest ignores HTTP_PROXY in a CGI
  // environment, which REQUEST_METHOD marks.
  for (const name of ['NO_PROXY', 'no_proxy', 'REQUEST_METHOD']) delete process.env[name]
}
