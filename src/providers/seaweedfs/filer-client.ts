// HTTP access to a SeaweedFS filer: path encoding, timeouts, retries and the conversion of
// failures to FsalErrors. The provider above it decides which requests to send.
//
// Requests go through Node's built-in fetch (undici), whose global dispatcher keeps connections
// alive and reuses them across requests to the same filer.

import type { Logger } from 'pino'
import { FsalError } from '../../fsal/errors.js'

/** Default limit for one operation, including its retries. */
export const DEFAULT_TIMEOUT_MS = 10_000
/** Default number of extra attempts for an idempotent request. */
export const DEFAULT_RETRIES = 3
/** Wait before the first retry, doubled for each later one. */
const RETRY_BASE_DELAY_MS = 50
/** At most one warning per interval about failing requests; the others are counted. */
const WARNING_INTERVAL_MS = 10_000

export interface FilerRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE'
  /** Decoded filer path, such as "/volumes/a/b c"; each segment is percent-encoded here. */
  path: string
  /** Keeps a trailing "/" on the encoded path (mkdir). */
  trailingSlash?: boolean
  query?: Record<string, string>
  headers?: Record<string, string>
  body?: Buffer
  /** True for requests that may be repeated: reads, metadata and listings. */
  idempotent: boolean
  /** Operation and path, for error messages and logs ("read /a/b"). */
  what: string
}

export interface FilerResponse {
  status: number
  headers: Headers
  body: Buffer
}

export interface FilerClientOptions {
  filerUrl: string
  logger: Logger
  timeoutMs?: number
  retries?: number
}

/**
 * Percent-encodes every segment of a decoded path. encodeURIComponent also encodes "?", "#", "%",
 * "&" and "+", which the filer's URL parser would otherwise read as syntax.
 */
export function encodePath(path: string, trailingSlash = false): string {
  const segments = path.split('/').filter((segment) => segment !== '')
  const encoded = '/' + segments.map(encodeURIComponent).join('/')
  return trailingSlash && segments.length > 0 ? `${encoded}/` : encoded
}

/** Returns true for a failure of the connection itself (refused, reset, closed), as fetch reports it. */
function isConnectionError(error: unknown): boolean {
  return error instanceof TypeError
}

function isAbort(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name
  return name === 'TimeoutError' || name === 'AbortError'
}

export class FilerClient {
  private readonly baseUrl: string
  private readonly logger: Logger
  readonly timeoutMs: number
  private readonly retries: number
  private lastWarningAt = 0
  private suppressedWarnings = 0

  constructor(options: FilerClientOptions) {
    this.baseUrl = options.filerUrl.replace(/\/+$/, '')
    this.logger = options.logger
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.retries = options.retries ?? DEFAULT_RETRIES
  }

  /**
   * Sends a request and returns the response with its whole body, whatever its status. An
   * idempotent request is repeated after a connection error or a 5xx status until the retries or
   * the timeout run out. Throws JUKEBOX when the filer cannot be reached in time or keeps
   * responding 503 (the NFS client tries again later), and IO when it keeps failing with another 5xx.
   */
  async send(request: FilerRequest): Promise<FilerResponse> {
    const deadline = AbortSignal.timeout(this.timeoutMs)
    const url = this.urlOf(request)
    const attempts = request.idempotent ? this.retries + 1 : 1

    let lastError: FsalError | null = null
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const delayed = await this.sleep(RETRY_BASE_DELAY_MS * 2 ** (attempt - 1), deadline)
        if (!delayed) break
        this.logger.debug({ op: request.what, attempt }, `retrying filer request: ${request.what}`)
      }

      try {
        const response = await fetch(url, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: deadline,
          redirect: 'manual'
        })
        const body = Buffer.from(await response.arrayBuffer())
        if (response.status >= 500 && request.idempotent) {
          // A 503 means that the filer is overloaded or starting, so the NFS client should try again later.
          const code = response.status === 503 ? 'JUKEBOX' : 'IO'
          lastError = new FsalError(code, `${request.what}: the filer responded ${response.status} ${body.toString('utf8').slice(0, 200)}`)
          continue
        }
        return { status: response.status, headers: response.headers, body }
      } catch (error) {
        if (isAbort(error)) {
          lastError = new FsalError('JUKEBOX', `${request.what}: the filer at ${this.baseUrl} did not respond within ${this.timeoutMs} ms`)
          break
        }
        if (!isConnectionError(error)) throw error
        const cause = (error as { cause?: { message?: string } }).cause?.message ?? (error as Error).message
        lastError = new FsalError('JUKEBOX', `${request.what}: cannot reach the filer at ${this.baseUrl}: ${cause}`)
      }
    }

    const failure = lastError ?? new FsalError('JUKEBOX', `${request.what}: the filer at ${this.baseUrl} did not respond within ${this.timeoutMs} ms`)
    this.warn(request.what, failure)
    throw failure
  }

  /** Logs a failed request, at most once per interval, with the number of warnings left out. */
  warn(what: string, error: Error): void {
    const now = Date.now()
    if (now - this.lastWarningAt < WARNING_INTERVAL_MS) {
      this.suppressedWarnings++
      return
    }
    this.logger.warn({ op: what, err: error, suppressed: this.suppressedWarnings }, `filer request failed: ${error.message}`)
    this.lastWarningAt = now
    this.suppressedWarnings = 0
  }

  private urlOf(request: FilerRequest): string {
    let url = this.baseUrl + encodePath(request.path, request.trailingSlash)
    const query = Object.entries(request.query ?? {})
    if (query.length > 0) {
      url += '?' + query.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&')
    }
    return url
  }

  /** Waits unless the deadline passes first; returns false when it did. */
  private async sleep(delayMs: number, deadline: AbortSignal): Promise<boolean> {
    if (deadline.aborted) return false
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer)
        resolve(false)
      }
      const timer = setTimeout(() => {
        deadline.removeEventListener('abort', onAbort)
        resolve(true)
      }, delayMs)
      deadline.addEventListener('abort', onAbort, { once: true })
    })
  }
}
