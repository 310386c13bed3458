// A fake OpenBao/Vault server on 127.0.0.1 with the parts of the HTTP API that secret resolution
// uses, shaped as the OpenBao API documentation describes them:
// - GET and POST /v1/<mount>/data/<path>: read the latest version of a KV version 2 secret
//   ({"data": {"data": {...}, "metadata": {...}}}) or write a new one;
// - DELETE /v1/<mount>/metadata/<path>: remove the secret with all its versions (204);
// - POST /v1/auth/approle/login with role_id and secret_id: {"auth": {"client_token": ...}};
// - errors as {"errors": [...]}: 403 "permission denied" for a missing or unknown token, 404 with
//   an empty list for a missing secret, and 400 "invalid role or secret ID" for a failed login.
// It records every request, and tests can make it fail or stall the next ones.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  /** The URL path, such as /v1/secret/data/aws/s3-reader. */
  path: string
  /** The X-Vault-Token header, or null. */
  token: string | null
  /** The X-Vault-Namespace header, or null. */
  namespace: string | null
  /** The parsed JSON body, or null. */
  body: unknown
}

export interface VaultFakeOptions {
  /** Path of the KV version 2 engine, `secret` by default. */
  mount?: string
  /** Tokens accepted from the start. */
  tokens?: string[]
  /** The one AppRole that may log in. */
  approle?: { roleId: string; secretId: string; leaseSeconds?: number }
}

interface SecretVersion {
  data: Record<string, unknown>
  createdTime: string
  deletionTime: string
  destroyed: boolean
}

export class VaultFake {
  readonly requests: RecordedRequest[] = []
  /** Tokens issued by AppRole logins, in order. */
  readonly issuedTokens: string[] = []
  private readonly mount: string
  private readonly tokens: Set<string>
  private readonly secrets = new Map<string, SecretVersion[]>()
  private readonly stalled: ServerResponse[] = []
  private failures: Array<{ status: number; errors: string[] }> = []
  private stallCount = 0

  private constructor(
    private readonly server: Server,
    readonly address: string,
    private readonly options: VaultFakeOptions
  ) {
    this.mount = options.mount ?? 'secret'
    this.tokens = new Set(options.tokens ?? [])
  }

  /** Starts a fake on a free port of 127.0.0.1. */
  static async start(options: VaultFakeOptions = {}): Promise<VaultFake> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const fake = new VaultFake(server, `http://127.0.0.1:${port}`, options)
    server.on('request', (request, response) => {
      fake.handle(request, response).catch((error: unknown) => {
        response.writeHead(500, { 'Content-Type': 'application/json' })
        response.end(JSON.stringify({ errors: [String(error)] }))
      })
    })
    return fake
  }

  /** Writes a new version of the secret at `path`. */
  putSecret(path: string, data: Record<string, unknown>): void {
    const versions = this.secrets.get(path) ?? []
    versions.push({ data: { ...data }, createdTime: new Date().toISOString(), deletionTime: '', destroyed: false })
    this.secrets.set(path, versions)
  }

  /** Soft-deletes the latest version of the secret at `path`, as DELETE /v1/<mount>/data/<path> does. */
  deleteLatest(path: string): void {
    const latest = this.secrets.get(path)?.at(-1)
    if (latest !== undefined) latest.deletionTime = new Date().toISOString()
  }

  /** Accepts `token` from now on. */
  addToken(token: string): void {
    this.tokens.add(token)
  }

  /** Makes every token invalid, as if each had expired or been revoked. */
  revokeAllTokens(): void {
    this.tokens.clear()
  }

  /** Responds to the next `count` requests with `status` and `errors` instead of handling them. */
  failNext(count: number, status: number, errors: string[] = []): void {
    for (let index = 0; index < count; index++) this.failures.push({ status, errors })
  }

  /** Leaves the next `count` requests without a response until close. */
  stallNext(count: number): void {
    this.stallCount += count
  }

  /** Requests to one path, such as /v1/auth/approle/login. */
  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path === path)
  }

  async close(): Promise<void> {
    for (const response of this.stalled) response.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.address)
    const body = await readJson(request)
    this.requests.push({
      method: request.method ?? '',
      path: url.pathname,
      token: headerOf(request, 'x-vault-token'),
      namespace: headerOf(request, 'x-vault-namespace'),
      body
    })

    if (this.stallCount > 0) {
      this.stallCount--
      this.stalled.push(response)
      return
    }
    const failure = this.failures.shift()
    if (failure !== undefined) return send(response, failure.status, { errors: failure.errors })

    if (url.pathname === '/v1/auth/approle/login' && request.method === 'POST') return this.login(response, body)

    const dataPrefix = `/v1/${this.mount}/data/`
    const metadataPrefix = `/v1/${this.mount}/metadata/`
    const prefix = [dataPrefix, metadataPrefix].find((candidate) => url.pathname.startsWith(candidate))
    if (prefix === undefined) return send(response, 404, { errors: [`no handler for route "${url.pathname.slice(4)}"`] })

    const token = headerOf(request, 'x-vault-token')
    if (token === null || !this.tokens.has(token)) return send(response, 403, { errors: ['permission denied'] })

    const path = url.pathname.slice(prefix.length).split('/').map(decodeURIComponent).join('/')
    if (prefix === metadataPrefix) {
      if (request.method !== 'DELETE') return send(response, 405, { errors: [] })
      // Deleting the metadata removes every version of the secret.
      this.secrets.delete(path)
      response.writeHead(204).end()
      return
    }
    if (request.method === 'GET') return this.read(response, path)
    if (request.method === 'POST' || request.method === 'PUT') return this.write(response, path, body)
    return send(response, 405, { errors: [] })
  }

  private read(response: ServerResponse, path: string): void {
    const latest = this.secrets.get(path)?.at(-1)
    if (latest === undefined) return send(response, 404, { errors: [] })

    const versions = this.secrets.get(path) ?? []
    const metadata = {
      created_time: latest.createdTime,
      custom_metadata: null,
      deletion_time: latest.deletionTime,
      destroyed: latest.destroyed,
      version: versions.length
    }
    // A deleted latest version returns 404 with its metadata and no data.
    if (latest.deletionTime !== '' || latest.destroyed) return send(response, 404, { data: { data: null, metadata } })
    send(response, 200, { request_id: `fake-${this.requests.length}`, lease_id: '', renewable: false, lease_duration: 0, data: { data: latest.data, metadata }, wrap_info: null, warnings: null, auth: null })
  }

  private write(response: ServerResponse, path: string, body: unknown): void {
    const data = (body as { data?: unknown } | null)?.data
    if (typeof data !== 'object' || data === null) return send(response, 400, { errors: ['no data provided'] })
    this.putSecret(path, data as Record<string, unknown>)
    const latest = this.secrets.get(path)?.at(-1)
    send(response, 200, { data: { created_time: latest?.createdTime, custom_metadata: null, deletion_time: '', destroyed: false, version: this.secrets.get(path)?.length } })
  }

  private login(response: ServerResponse, body: unknown): void {
    const approle = this.options.approle
    const credentials = body as { role_id?: unknown; secret_id?: unknown } | null
    if (approle === undefined || credentials?.role_id !== approle.roleId || credentials.secret_id !== approle.secretId) {
      return send(response, 400, { errors: ['invalid role or secret ID'] })
    }

    const token = `s.fake-approle-${this.issuedTokens.length + 1}`
    this.issuedTokens.push(token)
    this.tokens.add(token)
    send(response, 200, {
      request_id: `fake-${this.requests.length}`,
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      wrap_info: null,
      warnings: null,
      auth: {
        client_token: token,
        accessor: `accessor-${this.issuedTokens.length}`,
        policies: ['default', 'reader'],
        token_policies: ['default', 'reader'],
        metadata: { role_name: 'aegis-node' },
        lease_duration: approle.leaseSeconds ?? 1200,
        renewable: true
      }
    })
  }
}

function headerOf(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name]
  return typeof value === 'string' ? value : null
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  if (text === '') return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json' })
  response.end(JSON.stringify(body))
}
