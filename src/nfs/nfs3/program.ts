// The NFS program, version 3: a flat table of the 22 procedures (RFC 1813, section 3.3) and the
// one place where each request is timed, mapped to a status and audited.

import type { Logger } from 'pino'
import { auditRequest, type AuditSink } from '../../fsal/audit.js'
import { RequestContext } from '../../fsal/context.js'
import type { RpcCall, RpcProgram } from '../rpc/program.js'
import { XdrError } from '../xdr.js'
import { Nfsstat3, nfsStatusOf, statusName } from '../status.js'
import { access, fsinfo, fsstat, getattr, pathconf, setattr } from './attributes.js'
import { commit, read, write } from './data.js'
import { create, link, lookup, mkdir, mknod, readlink, remove, rename, rmdir, symlink } from './names.js'
import type { NfsServerState, Procedure } from './procedure.js'
import { readdir, readdirplus } from './readdir.js'
import { RepeatLimiter } from '../../repeat-limiter.js'

export const NFS_PROGRAM = 100003
export const NFS_VERSION = 3

const nullProcedure: Procedure = {
  name: 'NULL',
  nonIdempotent: false,
  failureWords: 0,
  async run() {}
}

/** Indexed by procedure number. */
const PROCEDURES: Procedure[] = [
  nullProcedure,
  getattr,
  setattr,
  lookup,
  access,
  readlink,
  read,
  write,
  create,
  mkdir,
  symlink,
  mknod,
  remove,
  rmdir,
  rename,
  link,
  readdir,
  readdirplus,
  fsstat,
  fsinfo,
  pathconf,
  commit
]

const BACKEND_FAILURE_LOG_INTERVAL_MS = 10_000

export class NfsProgram implements RpcProgram {
  readonly program = NFS_PROGRAM
  readonly name = 'nfs'
  readonly minVersion = NFS_VERSION
  readonly maxVersion = NFS_VERSION
  private blockedCount = 0
  /** Backend failures logged per volume. */
  private readonly failureLog = new RepeatLimiter(BACKEND_FAILURE_LOG_INTERVAL_MS)

  constructor(
    private readonly state: NfsServerState,
    private readonly audit: AuditSink,
    private readonly logger: Logger
  ) {}

  hasProcedure(_version: number, procedure: number): boolean {
    return procedure < PROCEDURES.length
  }

  isNonIdempotent(_version: number, procedure: number): boolean {
    return PROCEDURES[procedure].nonIdempotent
  }

  /**
   * Logs a request that failed in the storage backend (IO, JUKEBOX), so that its cause is in the
   * log and not only in the audit status: one line per volume every 10 s, with the count of
   * failures in between.
   */
  private logBackendFailure(ctx: RequestContext, procedure: string, error: Error, code: Nfsstat3): void {
    const volume = ctx.volume?.name ?? '-'
    const suppressed = this.failureLog.admit(volume, Date.now())
    if (suppressed === null) return
    const status = statusName(code)
    this.logger.warn({ volume, procedure, path: ctx.path(), status, reason: error.message, failedSinceLastLine: suppressed }, 'request failed in the storage backend')
  }

  async handle(rpc: RpcCall): Promise<void> {
    const procedure = PROCEDURES[rpc.procedure]
    const ctx = new RequestContext(rpc.connection.remoteAddress, rpc.credential.uid, rpc.credential.gid, procedure.name, rpc.receivedAt)
    const resultsOffset = rpc.reply.offset
    let status = 'OK'
    try {
      await procedure.run({ ctx, args: rpc.args, reply: rpc.reply, rpc, state: this.state })
    } catch (error) {
      if (error instanceof XdrError) {
        rpc.afterReply = () => auditRequest(this.audit, this.state.fsal.nodeName, ctx, 'GARBAGE_ARGS')
        throw error
      }

      let code = nfsStatusOf(error)
      if (code === undefined) {
        this.logger.error({ err: error, procedure: procedure.name, volume: ctx.volume?.name, path: ctx.path() }, 'NFS procedure failed')
        code = Nfsstat3.SERVERFAULT
      } else if (code === Nfsstat3.IO || code === Nfsstat3.JUKEBOX) {
        this.logBackendFailure(ctx, procedure.name, error as Error, code)
      }
      status = statusName(code)
      rpc.reply.offset = resultsOffset
      rpc.payload = null
      rpc.payloadRelease?.()
      rpc.payloadRelease = null
      rpc.reply.u32(code)
      for (let i = 0; i < procedure.failureWords; i++) rpc.reply.u32(0)
    }

    // The end of a modification, as requireWritable marked its start; cached attributes check both.
    if (procedure.modifies === true || procedure.nonIdempotent) {
      if (ctx.volume !== null) ctx.volume.modifications++
    }

    if (ctx.blocked !== null) {
      this.blockedCount++
      this.logger.warn({ client: ctx.client, procedure: procedure.name, volume: ctx.volume?.name, reason: ctx.blocked, blockedTotal: this.blockedCount }, 'request blocked')
    }
    rpc.afterReply = () => auditRequest(this.audit, this.state.fsal.nodeName, ctx, status)
  }
}
