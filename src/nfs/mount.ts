// The MOUNT program, version 3 (RFC 1813, appendix I): MNT, DUMP, UMNT, UMNTALL and EXPORT.
//
// Each volume is exported as "/<volume name>". MNT of a directory inside an export returns that
// directory's handle (nfs-cp and nfs-cat mount the parent directory of the file they copy); the
// walk never follows a symlink and never leaves the export.

import type { Logger } from 'pino'
import type { AuditSink } from '../fsal/audit.js'
import { RequestContext } from '../fsal/context.js'
import { FsalError } from '../fsal/errors.js'
import type { AegisFsal } from '../fsal/fsal.js'
import { checkName } from '../fsal/names.js'
import type { FsalNode } from '../fsal/node.js'
import { auditRequest } from '../fsal/audit.js'
import type { RpcCall, RpcProgram } from './rpc/program.js'
import { AUTH_NONE, AUTH_SYS } from './rpc/message.js'

export const MOUNT_PROGRAM = 100005
const MOUNT_VERSION = 3
const MNTPATHLEN = 1024
const MNTNAMLEN = 255

const enum MountStat {
  OK = 0,
  PERM = 1,
  NOENT = 2,
  IO = 5,
  ACCES = 13,
  NOTDIR = 20,
  INVAL = 22,
  NAMETOOLONG = 63,
  SERVERFAULT = 10006
}

const MOUNT_STATUS_NAMES = new Map<number, string>([
  [MountStat.OK, 'OK'],
  [MountStat.PERM, 'MNT3ERR_PERM'],
  [MountStat.NOENT, 'MNT3ERR_NOENT'],
  [MountStat.IO, 'MNT3ERR_IO'],
  [MountStat.ACCES, 'MNT3ERR_ACCES'],
  [MountStat.NOTDIR, 'MNT3ERR_NOTDIR'],
  [MountStat.INVAL, 'MNT3ERR_INVAL'],
  [MountStat.NAMETOOLONG, 'MNT3ERR_NAMETOOLONG'],
  [MountStat.SERVERFAULT, 'MNT3ERR_SERVERFAULT']
])

/** Bounds of the mount list DUMP reports; it is informational, so a full list just stops growing. */
const MAX_MOUNT_CLIENTS = 1024
const MAX_MOUNTS_PER_CLIENT = 64

/** "/vol//a/" and "//vol/a" are the same mount as "/vol/a". */
function normalizeMountPath(dirPath: string): string {
  return '/' + dirPath.split('/').filter((part) => part.length > 0).join('/')
}

const PROCEDURE_NAMES = ['MOUNT_NULL', 'MNT', 'DUMP', 'UMNT', 'UMNTALL', 'EXPORT']

const MOUNT_STATUS_BY_CODE: Partial<Record<string, MountStat>> = {
  NOENT: MountStat.NOENT,
  ACCES: MountStat.ACCES,
  PERM: MountStat.PERM,
  NOTDIR: MountStat.NOTDIR,
  INVAL: MountStat.INVAL,
  NAMETOOLONG: MountStat.NAMETOOLONG,
  STALE: MountStat.NOENT,
  IO: MountStat.IO
}

export class MountProgram implements RpcProgram {
  readonly program = MOUNT_PROGRAM
  readonly name = 'mount'
  readonly minVersion = MOUNT_VERSION
  readonly maxVersion = MOUNT_VERSION
  /** Current mounts for DUMP: "client address" -> set of mounted paths. */
  private readonly mounts = new Map<string, Set<string>>()

  constructor(
    private readonly fsal: AegisFsal,
    private readonly audit: AuditSink,
    private readonly logger: Logger
  ) {}

  hasProcedure(_version: number, procedure: number): boolean {
    return procedure < PROCEDURE_NAMES.length
  }

  isNonIdempotent(): boolean {
    return false
  }

  async handle(call: RpcCall): Promise<void> {
    const client = call.connection.remoteAddress
    const ctx = new RequestContext(client, call.credential.uid, call.credential.gid, PROCEDURE_NAMES[call.procedure], call.receivedAt)
    const reply = call.reply
    let status = 'OK'

    switch (call.procedure) {
      case 1: {
        const dirPath = call.args.opaque(MNTPATHLEN).toString('utf8')
        const result = await this.mnt(ctx, dirPath)
        status = MOUNT_STATUS_NAMES.get(result.status) ?? `MNT3ERR_${result.status}`
        reply.u32(result.status)
        if (result.handle !== null) {
          reply.opaque(result.handle)
          reply.u32(2)
          reply.u32(AUTH_SYS)
          reply.u32(AUTH_NONE)
          this.remember(client, dirPath)
        }
        break
      }
      case 2:
        for (const [host, paths] of this.mounts) {
          for (const dirPath of paths) {
            // Only mounts of volumes the caller may use, so DUMP reveals nothing EXPORT hides.
            const volume = this.fsal.volumeByName(dirPath.split('/').find((part) => part.length > 0) ?? '')
            if (volume === undefined || !this.fsal.clientAllowed(volume, client)) continue
            reply.bool(true)
            reply.string(host.slice(0, MNTNAMLEN))
            reply.string(dirPath)
          }
        }
        reply.bool(false)
        break
      case 3: {
        const dirPath = call.args.opaque(MNTPATHLEN).toString('utf8')
        this.mounts.get(client)?.delete(normalizeMountPath(dirPath))
        break
      }
      case 4:
        this.mounts.delete(client)
        break
      case 5:
        for (const volume of this.fsal.volumes) {
          if (!this.fsal.clientAllowed(volume, client)) continue
          reply.bool(true)
          reply.string(`/${volume.name}`)
          for (const group of volume.settings.allowedClients.rules) {
            reply.bool(true)
            reply.string(group.replace(/^\w+: IPv[46] /, ''))
          }
          reply.bool(false)
        }
        reply.bool(false)
        break
    }

    call.afterReply = () => auditRequest(this.audit, this.fsal.nodeName, ctx, status)
  }

  /** Records a mount for DUMP under its normalized path, with bounded memory per client and in all. */
  private remember(client: string, dirPath: string): void {
    let paths = this.mounts.get(client)
    if (paths === undefined) {
      if (this.mounts.size >= MAX_MOUNT_CLIENTS) return
      paths = new Set()
      this.mounts.set(client, paths)
    }
    if (paths.size < MAX_MOUNTS_PER_CLIENT) paths.add(normalizeMountPath(dirPath))
  }

  /** Resolves "/<volume>[/dir...]" to a directory handle, walking one checked name at a time. */
  private async mnt(ctx: RequestContext, dirPath: string): Promise<{ status: MountStat; handle: Buffer | null }> {
    const parts = dirPath.split('/').filter((part) => part.length > 0)
    const volume = parts.length > 0 ? this.fsal.volumeByName(parts[0]) : undefined
    ctx.name = dirPath
    if (volume === undefined) {
      this.logger.info({ client: ctx.client, path: dirPath }, 'MNT of a path that is not exported')
      return { status: MountStat.NOENT, handle: null }
    }
    ctx.volume = volume
    ctx.name = null
    if (!this.fsal.clientAllowed(volume, ctx.client)) {
      ctx.blocked = `client ${ctx.client} is not in the allowed_clients of volume ${volume.name}`
      this.logger.warn({ client: ctx.client, volume: volume.name }, 'MNT rejected: client address is not in allowed_clients')
      return { status: MountStat.ACCES, handle: null }
    }

    let node: FsalNode = volume.root
    ctx.node = node
    try {
      for (const part of parts.slice(1)) {
        const name = checkName(Buffer.from(part))
        const attributes = await volume.provider.lookup(node, name)
        if (attributes.type !== 'dir') return { status: MountStat.NOTDIR, handle: null }
        node = volume.nodeFor(node, name, attributes)
        ctx.node = node
      }
    } catch (error) {
      if (error instanceof FsalError) {
        if (error.code === 'ACCES') ctx.blocked = `MNT path ${JSON.stringify(dirPath)}: ${error.message}`
        return { status: MOUNT_STATUS_BY_CODE[error.code] ?? MountStat.SERVERFAULT, handle: null }
      }
      throw error
    }
    return { status: MountStat.OK, handle: this.fsal.handleOf(volume, node) }
  }
}
