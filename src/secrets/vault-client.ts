// A small client for the part of the OpenBao and Vault HTTP API that secret references need. It
// reads the latest version of a KV version 2 secret, logs in with AppRole, and retries reads that
// fail for reasons that may pass. OpenBao keeps the Vault API: the same paths, the X-Vault-Token
// header, and an {"errors": [...]} body in every response with status 400 or above.

import { lookup as dnsLookup } from 'node:dns/promises'
import { setTimeout as sleep } from 'node:timers/promises'

import type { Logger } from 'pino'

import { resolvesToMetadata, type HostLookup } from '../config/opendal.js'
import type { CredentialSource, VaultConfig } from '../config/secrets.js'
import { CredentialUnavailable, readCredential, type Environment } from './credentials.js'
import { SecretResolutionError } from './errors.js'
import type { Redactor } from './redactor.js'

export interface VaultClientOptions {
  config: VaultConfig
  logger: Logger
  /** Receives every credential and token the client handles, and cleans server messages. */
  redactor: Redactor
  env: Environment
  /** Further attempts of a read after a connection error, a timeout, HTTP 429 or HTTP 5xx. */
  retries: number
  /** Wait before the first retry, in milliseconds, doubling for each further one. */
  retryDelayMs: number
  /** Resolves the server's host name for the metadata-service check; the system resolver by default. */
  lookup?: HostLookup
}

interface VaultResponse {
  status: number
  /** The parsed JSON body, or null when it is empty or not JSON. */
  body: unknown
  location: string | null
}

interface ClientToken {
  value: string
  /** When to log in again before the lease runs out, or null for a token without a known lease. */
  refreshAtMs: number | null
}

/**
 * A failure without the reference that caused it. Several references can wait on one login, so
 * `readSecret` adds each caller's own reference when it turns this into SecretResolutionError.
 */
class VaultFailure extends Error {
  override name = 'VaultFailure'
  constructor(
    readonly status: number | null,
    readonly detail: string,
    options?: ErrorOptions
  ) {
    super(detail, options)
  }
}

/** A request that got no response. `beforeSending` is true when the request surely never left. */
class RequestFailed extends Error {
  override name = 'RequestFailed'
  constructor(
    readonly reason: string,
    readonly beforeSending: boolean,
    cause: unknown
  ) {
    super(reason, { cause })
  }
}

/** Connection errors that happen before any byte of the request is sent, so even a login may be retried. */
const connectErrorCodes = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

/** Maximum length of a server's error message kept in an error, in characters. */
const maxServerMessageLength = 300

/** Share of a login lease after which the client logs in again instead of using the token. */
const leaseRefreshShare = 0.9

export class VaultClient {
  private readonly log: Logger
  private token: ClientToken | null = null
  /** The login under way, which concurrent reads share. */
  private pendingToken: Promise<ClientToken> | null = null
  /** The check of the server's host name, run before the first request is sent. */
  private addressCheck: Promise<void> | null = null

  constructor(private readonly options: VaultClientOptions) {
    this.log = options.logger
  }

  get address(): string {
    return this.options.config.address
  }

  /**
   * Returns the data map of the latest version of the KV secret at `path`. Throws
   * SecretResolutionError naming `reference`. A read that the server denies with HTTP 403 is
   * tried once more with a new token when a new one can be had: after an AppRole login, or when
   * an `env:` or `file:` token has changed.
   */
  async readSecret(path: string, reference: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
    try {
      this.addressCheck ??= this.checkAddress()
      await this.addressCheck
      const apiPath = `${this.options.config.mount}/data/${encodePath(path)}`
      let attempt = await this.readWithToken(apiPath, signal)
      if (attempt.response.status === 403 && (await this.replaceToken(attempt.token))) {
        attempt = await this.readWithToken(apiPath, signal)
      }
      return this.secretData(attempt.response, path)
    } catch (error) {
      if (!(error instanceof VaultFailure)) throw error
      throw new SecretResolutionError({ reference, address: this.address, status: error.status, detail: error.detail }, { cause: error.cause })
    }
  }

  /**
   * Refuses a server whose host name resolves to a cloud metadata service, which would receive the
   * node's token. The literal addresses are refused when the configuration is read.
   * NOTE: the name is checked once, and fetch resolves it again for each connection, so a DNS
   * answer that changes to a metadata address after the check is not caught.
   */
  private async checkAddress(): Promise<void> {
    const lookup = this.options.lookup ?? ((hostname: string) => dnsLookup(hostname, { all: true }))
    const address = await resolvesToMetadata(new URL(this.address).hostname, lookup)
    if (address !== null) {
      throw new VaultFailure(null, `the host of ${this.address} resolves to ${address}, a cloud metadata service or a link-local address, so the node's token is not sent there; write the address of the OpenBao or Vault server in secrets.vault.address`)
    }
  }

  private async readWithToken(apiPath: string, signal: AbortSignal | undefined): Promise<{ response: VaultResponse; token: string }> {
    const token = (await this.currentToken()).value
    const response = await this.send('GET', apiPath, { token, idempotent: true, signal })
    return { response, token }
  }

  /** Returns the token to send, logging in first when there is none or its lease is nearly over. */
  private async currentToken(): Promise<ClientToken> {
    const token = this.token
    if (token !== null && (token.refreshAtMs === null || Date.now() < token.refreshAtMs)) return token

    // The login is shared by every read waiting for it, so it runs without any one caller's signal.
    this.pendingToken ??= this.obtainToken().finally(() => {
      this.pendingToken = null
    })
    this.token = await this.pendingToken
    return this.token
  }

  /** Drops a token the server rejected. Returns true when the next token differs from it. */
  private async replaceToken(rejected: string): Promise<boolean> {
    const { auth } = this.options.config
    if (auth.method === 'token' && auth.token.kind === 'literal') return false

    // Another read may already have replaced the token.
    if (this.token?.value === rejected) this.token = null
    const next = await this.currentToken()
    if (next.value === rejected) return false

    this.log.warn({ address: this.address, method: auth.method }, 'the secret server denied a read; retrying with a new token')
    return true
  }

  private async obtainToken(): Promise<ClientToken> {
    const { auth } = this.options.config
    if (auth.method === 'token') {
      return { value: await this.credential(auth.token, 'secrets.vault.token'), refreshAtMs: null }
    }

    const roleId = await this.credential(auth.roleId, 'secrets.vault.approle.role_id')
    const secretId = await this.credential(auth.secretId, 'secrets.vault.approle.secret_id')
    const response = await this.send('POST', 'auth/approle/login', { body: { role_id: roleId, secret_id: secretId }, idempotent: false })

    const login = fieldOf(response.body, 'auth')
    const clientToken = fieldOf(login, 'client_token')
    if (response.status !== 200 || typeof clientToken !== 'string' || clientToken === '') {
      throw new VaultFailure(
        response.status,
        `AppRole login at ${this.address} failed (${this.describeResponse(response)}); ` +
          'check secrets.vault.approle.role_id and secret_id, and that the AppRole auth method is enabled at auth/approle'
      )
    }
    this.options.redactor.add(clientToken)

    const leaseDuration = fieldOf(login, 'lease_duration')
    const leaseSeconds = typeof leaseDuration === 'number' && leaseDuration > 0 ? leaseDuration : null
    const refreshAtMs = leaseSeconds === null ? null : Date.now() + leaseSeconds * 1000 * leaseRefreshShare
    this.log.info({ address: this.address, leaseSeconds, renewable: fieldOf(login, 'renewable') === true }, 'logged in to the secret server with AppRole')
    return { value: clientToken, refreshAtMs }
  }

  private async credential(source: CredentialSource, field: string): Promise<string> {
    try {
      const value = await readCredential(source, field, this.options.env)
      this.options.redactor.add(value)
      return value
    } catch (error) {
      if (error instanceof CredentialUnavailable) throw new VaultFailure(null, error.message, { cause: error.cause })
      throw error
    }
  }

  /** Returns `data.data` of a KV version 2 read, or throws VaultFailure describing the response. */
  private secretData(response: VaultResponse, path: string): Record<string, unknown> {
    const { mount } = this.options.config
    const where = `${path} in the KV engine ${mount} of ${this.address}`
    const version = fieldOf(response.body, 'data')

    if (response.status === 200) {
      const data = fieldOf(version, 'data')
      if (isRecord(data)) return data
      throw new VaultFailure(200, `the response for ${where} has no data map; check that ${mount} is a KV version 2 engine`)
    }

    if (response.status === 404) {
      // A deleted or destroyed latest version still returns 404, with its metadata in the body.
      const metadata = fieldOf(version, 'metadata')
      const deletionTime = fieldOf(metadata, 'deletion_time')
      if (fieldOf(metadata, 'destroyed') === true) {
        throw new VaultFailure(404, `the latest version of the secret at ${where} was destroyed; write a new version`)
      }
      if (typeof deletionTime === 'string' && deletionTime !== '') {
        throw new VaultFailure(404, `the latest version of the secret at ${where} was deleted at ${deletionTime}; undelete it or write a new version`)
      }
      throw new VaultFailure(404, `no secret at ${where} (HTTP 404); check the path in the reference, and that ${mount} is a KV version 2 engine`)
    }

    if (response.status === 403) {
      const holder = this.options.config.auth.method === 'approle' ? 'the AppRole' : 'the token'
      throw new VaultFailure(
        403,
        `${this.address} denied reading ${mount}/data/${path} (${this.describeResponse(response)}); ` +
          `check that ${holder} is valid and has a policy with the read capability on ${mount}/data/${path}`
      )
    }

    if (response.status >= 300 && response.status < 400) {
      throw new VaultFailure(
        response.status,
        `${this.address} answered with a redirect (HTTP ${response.status} to ${response.location ?? 'no location'}), which is not followed so that ` +
          'the token goes only to secrets.vault.address; set the address of the active server'
      )
    }

    const hint = response.status === 503 ? 'check that the server is unsealed' : 'check the server log'
    throw new VaultFailure(response.status, `${this.address} failed to return ${mount}/data/${path} (${this.describeResponse(response)}); ${hint}`)
  }

  /**
   * Sends one request, retrying a connection error, a timeout, HTTP 429 or HTTP 5xx when
   * `idempotent`. A request that is not idempotent (a login, which may use up a secret_id) is
   * retried only after a connection error that sent nothing.
   */
  private async send(
    method: 'GET' | 'POST',
    apiPath: string,
    request: { token?: string; body?: unknown; idempotent: boolean; signal?: AbortSignal }
  ): Promise<VaultResponse> {
    const { retries, retryDelayMs } = this.options
    const attempts = 1 + retries

    for (let attempt = 1; ; attempt++) {
      let reason: string
      try {
        const response = await this.fetchOnce(method, apiPath, request)
        const retryable = request.idempotent && (response.status === 429 || response.status >= 500)
        if (!retryable || attempt >= attempts) return response
        reason = this.describeResponse(response)
      } catch (error) {
        if (!(error instanceof RequestFailed)) throw error
        if (!(request.idempotent || error.beforeSending) || attempt >= attempts) {
          const tries = attempt === 1 ? '' : ` after ${attempt} attempts`
          throw new VaultFailure(
            null,
            `cannot reach ${this.address}${tries}: ${error.reason}; check secrets.vault.address and that the server is running`,
            { cause: error.cause }
          )
        }
        reason = error.reason
      }

      const delayMs = retryDelayMs * 2 ** (attempt - 1)
      this.log.warn({ address: this.address, path: apiPath, attempt, attempts, delayMs, reason }, 'secret server request failed; retrying')
      try {
        await sleep(delayMs, undefined, { signal: request.signal })
      } catch (error) {
        // Report the caller's reason for aborting, as an abort during a request does.
        if (request.signal?.aborted === true) throw request.signal.reason
        throw error
      }
    }
  }

  private async fetchOnce(method: string, apiPath: string, request: { token?: string; body?: unknown; signal?: AbortSignal }): Promise<VaultResponse> {
    const { namespace, timeoutMs } = this.options.config
    const headers: Record<string, string> = {}
    if (request.token !== undefined) headers['X-Vault-Token'] = request.token
    if (namespace !== null) headers['X-Vault-Namespace'] = namespace
    if (request.body !== undefined) headers['Content-Type'] = 'application/json'

    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = request.signal === undefined ? timeout : AbortSignal.any([timeout, request.signal])
    try {
      // A redirect is not followed, because fetch would send X-Vault-Token to the new host too.
      const response = await fetch(`${this.address}/v1/${apiPath}`, {
        method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        redirect: 'manual',
        signal
      })
      const text = await response.text()
      return { status: response.status, body: parseJson(text), location: response.headers.get('location') }
    } catch (error) {
      if (request.signal?.aborted === true) throw request.signal.reason
      if (timeout.aborted) throw new RequestFailed(`no response within ${timeoutMs}ms (secrets.vault.timeout)`, false, error)
      const system = systemError(error)
      const reason = system?.message || system?.code || ((error as Error).cause as Error | undefined)?.message || (error as Error).message
      const beforeSending = system?.code !== undefined && connectErrorCodes.has(system.code)
      throw new RequestFailed(`the request failed (${reason})`, beforeSending, error)
    }
  }

  /** Describes a response as `HTTP 403: permission denied`, with the server's messages redacted and shortened. */
  private describeResponse(response: VaultResponse): string {
    const errors = fieldOf(response.body, 'errors')
    const messages = Array.isArray(errors) ? errors.filter((item): item is string => typeof item === 'string') : []
    if (messages.length === 0) return `HTTP ${response.status}`

    let text = this.options.redactor.redact(messages.join('; ').replace(/\s+/g, ' ').trim())
    if (text.length > maxServerMessageLength) text = text.slice(0, maxServerMessageLength - 3) + '...'
    return `HTTP ${response.status}: ${text}`
  }
}

/** Encodes each segment of a secret path, keeping the "/" between them. */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

function parseJson(text: string): unknown {
  if (text === '') return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Returns `value[key]` when `value` is an object, or undefined. */
function fieldOf(value: unknown, key: string): unknown {
  return isRecord(value) ? value[key] : undefined
}

/**
 * Finds the system error (ECONNREFUSED, a TLS failure, ...) that undici puts on the cause of
 * "fetch failed". Several addresses of one host fail together as an AggregateError.
 */
function systemError(error: unknown): { code: string; message: string } | null {
  let current: unknown = error
  for (let depth = 0; depth < 4 && isRecord(current); depth++) {
    if (typeof current.code === 'string') return { code: current.code, message: typeof current.message === 'string' ? current.message : '' }
    const inner = current.errors
    current = Array.isArray(inner) && inner.length > 0 ? inner[0] : current.cause
  }
  return null
}
