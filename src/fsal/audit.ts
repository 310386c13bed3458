// The audit trail: one StorageEvent per request, written as JSON lines.
//
// Events are buffered in memory and appended in batches. The sink never drops an event to keep up:
// when maxPendingEvents are waiting, record() returns a promise and the request's reply waits for
// it. Only a failing audit file loses events, and then every lost event is counted, logged and
// reported by stats().

import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import type { RequestContext } from './context.js'

export interface StorageEvent {
  time: string
  node: string
  volume: string | null
  client: string
  uid: number | null
  gid: number | null
  procedure: string
  path: string | null
  /** The second path of RENAME and LINK. */
  target: string | null
  offset: number | null
  length: number | null
  bytes: number | null
  status: string
  durationUs: number
  /** Reason AegisFSAL rejected a request that tried to leave its volume or forge a handle. */
  blocked?: string
  /** For a request that came over the mesh: the calling peer and how the owner decided it. */
  mesh?: MeshAudit
}

export interface MeshAudit {
  peer: string
  /** The envelope check that refused the request, such as BAD_SIGNATURE or REPLAYED. */
  rejected?: string
  decision?: 'allow' | 'deny'
  /** Ids of the Cedar policies that decided. */
  policies?: string[]
}

export interface AuditStats {
  written: number
  dropped: number
  pending: number
}

const BATCH_BYTES = 256 * 1024
const SUMMARY_INTERVAL_MS = 60_000
/** How long an event may wait for others to share its write; batching keeps audit I/O off the hot path. */
const FLUSH_DELAY_MS = 20

export class AuditSink {
  private fd = -1
  private lines: string[] = []
  private pendingBytes = 0
  private writing = false
  private flushScheduled = false
  private written = 0
  private dropped = 0
  private lastSummaryWritten = 0
  private waiters: Array<() => void> = []
  private summaryTimer: NodeJS.Timeout | null = null

  constructor(
    private readonly filePath: string,
    private readonly maxPendingEvents: number,
    private readonly logger: Logger
  ) {}

  async open(): Promise<void> {
    await fs.promises.mkdir(path.dirname(this.filePath), { recursive: true })
    this.fd = fs.openSync(this.filePath, 'a', 0o600)
    // A file that existed before may have looser permissions; the trail names every client's paths.
    fs.fchmodSync(this.fd, 0o600)
    this.summaryTimer = setInterval(() => this.logSummary(), SUMMARY_INTERVAL_MS)
    this.summaryTimer.unref()
    this.logger.info({ path: this.filePath }, 'audit trail opened')
  }

  /** Queues one event; returns a promise when the queue is full, which resolves once it drains. */
  record(event: StorageEvent): Promise<void> | undefined {
    const line = serializeEvent(event)
    this.lines.push(line)
    this.pendingBytes += line.length
    if (this.pendingBytes >= BATCH_BYTES) this.flush()
    else this.scheduleFlush()

    if (this.lines.length < this.maxPendingEvents) return undefined
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  stats(): AuditStats {
    return { written: this.written, dropped: this.dropped, pending: this.lines.length }
  }

  /** Writes every queued event, syncs and closes the file. */
  async close(): Promise<void> {
    if (this.summaryTimer) clearInterval(this.summaryTimer)
    while (this.lines.length > 0 || this.writing) {
      if (!this.writing) this.flush()
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    if (this.fd >= 0) {
      fs.fsyncSync(this.fd)
      fs.closeSync(this.fd)
      this.fd = -1
    }
    this.logger.info(this.stats(), 'audit trail closed')
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setTimeout(() => this.flush(), FLUSH_DELAY_MS)
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.writing || this.lines.length === 0) return

    const batch = this.lines
    this.lines = []
    this.pendingBytes = 0
    this.writing = true
    const data = Buffer.from(batch.join(''))
    writeAll(this.fd, data, (error) => {
      this.writing = false
      if (error) {
        this.dropped += batch.length
        this.logger.error({ err: error, path: this.filePath, lost: batch.length, droppedTotal: this.dropped }, 'audit events could not be written and are lost')
      } else {
        this.written += batch.length
      }

      // Events that arrived during the write wait for the next batch, unless the queue is full or
      // someone waits for it to drain (a full queue or close()).
      if (this.lines.length > 0) {
        if (this.pendingBytes >= BATCH_BYTES || this.waiters.length > 0) this.flush()
        else this.scheduleFlush()
      }
      if (this.lines.length < this.maxPendingEvents) {
        const waiters = this.waiters
        this.waiters = []
        for (const resolve of waiters) resolve()
      }
    })
  }

  private logSummary(): void {
    if (this.written === this.lastSummaryWritten) return
    this.lastSummaryWritten = this.written
    this.logger.info(this.stats(), 'audit events written')
  }
}

/** Characters JSON.stringify would escape: quotes, backslashes, controls and surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

function jsonString(value: string | null): string {
  if (value === null) return 'null'
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

function jsonNumber(value: number | null): string {
  return value === null ? 'null' : String(value)
}

/**
 * Formats one event as a JSON line with the fields in a fixed order. It gives the same text as
 * JSON.stringify for these flat records, at a fraction of the cost on the request path.
 */
export function serializeEvent(event: StorageEvent): string {
  let line =
    `{"time":${jsonString(event.time)},"node":${jsonString(event.node)},"volume":${jsonString(event.volume)}` +
    `,"client":${jsonString(event.client)},"uid":${event.uid},"gid":${event.gid},"procedure":${jsonString(event.procedure)}` +
    `,"path":${jsonString(event.path)},"target":${jsonString(event.target)},"offset":${jsonNumber(event.offset)}` +
    `,"length":${jsonNumber(event.length)},"bytes":${jsonNumber(event.bytes)},"status":${jsonString(event.status)}` +
    `,"durationUs":${event.durationUs}`
  if (event.blocked !== undefined) line += `,"blocked":${jsonString(event.blocked)}`
  if (event.mesh !== undefined) line += `,"mesh":${JSON.stringify(event.mesh)}`
  return line + '}\n'
}

/** Records one request in the audit trail; returns a promise when the reply must wait for the sink. */
export function auditRequest(audit: AuditSink, nodeName: string, ctx: RequestContext, status: string, mesh?: MeshAudit): Promise<void> | undefined {
  const event: StorageEvent = {
    time: isoNow(),
    node: nodeName,
    volume: ctx.volume?.name ?? null,
    client: ctx.client,
    uid: ctx.uid,
    gid: ctx.gid,
    procedure: ctx.procedure,
    path: ctx.path(),
    target: ctx.target,
    offset: ctx.offset,
    length: ctx.length,
    bytes: ctx.bytes,
    status,
    durationUs: Number((process.hrtime.bigint() - ctx.startedAt) / 1000n)
  }
  if (ctx.blocked !== null) event.blocked = ctx.blocked
  if (mesh !== undefined) event.mesh = mesh
  return audit.record(event)
}

let isoMs = 0
let isoText = ''

/** The current time as an ISO 8601 string, formatted at most once per millisecond. */
export function isoNow(): string {
  const now = Date.now()
  if (now !== isoMs) {
    isoMs = now
    isoText = new Date(now).toISOString()
  }
  return isoText
}

/** Appends all of `data`, continuing after short writes. */
function writeAll(fd: number, data: Buffer, callback: (error: Error | null) => void): void {
  fs.write(fd, data, 0, data.length, null, (error, bytesWritten) => {
    if (error) callback(error)
    else if (bytesWritten < data.length) writeAll(fd, data.subarray(bytesWritten), callback)
    else callback(null)
  })
}
