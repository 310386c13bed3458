// The owner side of SEAL. Every request from another node is checked in a fixed order: the
// envelope (signature, sender, recipient, freshness, replay, operation, volume, data hash), then
// the Cedar policies. Only then does it run through this node's own AegisFSAL, so path safety,
// quota and read-only apply as they do for a local agent. Each request is one audit event.

import type { Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { auditRequest, isoNow, type AuditSink, type MeshAudit } from '../fsal/audit.js'
import { RequestContext } from '../fsal/context.js'
import { AccessDenied, BadHandle, FsalError, InvalidArgument, NotSupported } from '../fsal/errors.js'
import type { AegisFsal } from '../fsal/fsal.js'
import type { FsalNode } from '../fsal/node.js'
import type { Volume } from '../fsal/volume.js'
import { DataAssembly, encodeReply, FrameKind, FrameParser, FrameWriter, ProtocolError, readFrames, SEAL_PROTOCOL, splitDataLength, type Frame, type Reply } from './channel.js'
import { EnvelopeRejected, EnvelopeVerifier, type SealEnvelope } from './envelope.js'
import type { MeshNode } from './libp2p.js'
import { READ_OPERATIONS, WRITE_OPERATIONS, type Decision, type PolicyEngine } from './policy.js'
import { ArgumentError, ArgumentReader, encodeAttributes } from './wire.js'

export const SEAL_OPERATIONS: ReadonlySet<string> = new Set<string>([...READ_OPERATIONS, ...WRITE_OPERATIONS])

/** A volume of this node that the mesh may address. */
export interface SharedVolume {
  volume: Volume
  labels: readonly string[]
  storageClass: string
}

export interface SealServiceOptions {
  node: MeshNode
  selfPeerId: string
  nodeName: string
  fsal: AegisFsal
  audit: AuditSink
  logger: Logger
  /** Shared volumes by id (the volume name). */
  shared: ReadonlyMap<string, SharedVolume>
  peerLabels: Readonly<Record<string, readonly string[]>>
  /** The policies, or null when none are configured: then every request is denied. */
  policy: PolicyEngine | null
  maxClockSkewMs: number
}

/** Maximum requests in flight on one stream; beyond it the owner responds JUKEBOX (retry later). */
const MAX_IN_FLIGHT_PER_STREAM = 128
const READDIR_PAGE_MAX = 4096
const MAX_READ_BYTES = 4 * 1024 * 1024

/** The outcome of one request: the reply and the data that follows it. */
interface Outcome {
  result: unknown
  data: Buffer | null
  release: (() => void) | null
}

export class SealService {
  private readonly verifier: EnvelopeVerifier
  private readonly streams = new Set<Stream>()

  constructor(private readonly options: SealServiceOptions) {
    this.verifier = new EnvelopeVerifier({
      selfPeerId: options.selfPeerId,
      maxSkewMs: options.maxClockSkewMs,
      operations: SEAL_OPERATIONS,
      knowsVolume: (id) => options.shared.has(id)
    })
  }

  async start(): Promise<void> {
    await this.options.node.handle(SEAL_PROTOCOL, (stream, connection) => this.serve(stream, connection.remotePeer.toString()), {
      maxInboundStreams: 8
    })
  }

  async stop(): Promise<void> {
    await this.options.node.unhandle(SEAL_PROTOCOL)
    for (const stream of this.streams) stream.abort(new Error('the node is stopping'))
    this.streams.clear()
  }

  /** Serves one long-lived stream from `peer`, responding to each request when it finishes, in any order. */
  private serve(stream: Stream, peer: string): void {
    this.streams.add(stream)
    this.options.logger.debug({ peer, streams: this.streams.size }, 'SEAL stream opened')
    const writer = new FrameWriter(stream)
    const receiving = new Map<number, { wire: Buffer; assembly: DataAssembly; cancelled: boolean }>()
    const running = new Map<number, { cancelled: boolean }>()
    const logger = this.options.logger

    const start = (id: number, wire: Buffer, data: Buffer | null): void => {
      if (running.has(id)) throw new ProtocolError(`request id ${id} is already in flight`)
      const state = { cancelled: false }
      running.set(id, state)
      void this.handle(peer, wire, data).then(async ({ reply, outcome }) => {
        running.delete(id)
        try {
          if (!state.cancelled && stream.status === 'open') await writer.message(FrameKind.Response, id, encodeReply(reply), outcome?.data ?? null)
        } catch (error) {
          logger.debug({ peer, err: error }, 'could not send a reply; the stream closed')
        } finally {
          outcome?.release?.()
        }
      })
    }

    const onFrame = (frame: Frame): void => {
      switch (frame.kind) {
        case FrameKind.Request: {
          const { dataLength, body } = splitDataLength(frame.payload)
          if (running.size + receiving.size >= MAX_IN_FLIGHT_PER_STREAM) {
            const busy: Reply = { ok: false, code: 'JUKEBOX', message: `more than ${MAX_IN_FLIGHT_PER_STREAM} requests in flight on one stream; retry` }
            if (dataLength === 0) void writer.message(FrameKind.Response, frame.id, encodeReply(busy), null).catch(() => {})
            else throw new ProtocolError(`request ${frame.id} with data exceeds ${MAX_IN_FLIGHT_PER_STREAM} requests in flight`)
            return
          }
          // The envelope is kept past this frame, so it must not share the parser's buffer.
          const wire = Buffer.from(body)
          if (dataLength === 0) start(frame.id, wire, null)
          else receiving.set(frame.id, { wire, assembly: new DataAssembly(dataLength), cancelled: false })
          return
        }
        case FrameKind.Data: {
          const pending = receiving.get(frame.id)
          if (pending === undefined) throw new ProtocolError(`data for request ${frame.id}, which announced none`)
          if (pending.assembly.add(frame.payload)) {
            receiving.delete(frame.id)
            // The caller gave up while its data was still arriving: nothing is run.
            if (!pending.cancelled) start(frame.id, pending.wire, pending.assembly.data)
          }
          return
        }
        case FrameKind.Cancel: {
          const state = running.get(frame.id) ?? receiving.get(frame.id)
          if (state !== undefined) state.cancelled = true
          return
        }
        default:
          throw new ProtocolError(`unexpected frame kind ${frame.kind as number}`)
      }
    }

    readFrames(stream, new FrameParser(onFrame), (error) => logger.warn({ peer, err: error }, 'malformed SEAL frame; closing the stream'))
    stream.addEventListener('close', () => this.streams.delete(stream))
  }

  /** Checks and runs one request; every failure becomes an error reply. */
  async handle(peer: string, wire: Uint8Array, data: Buffer | null): Promise<{ reply: Reply; outcome: Outcome | null }> {
    const started = process.hrtime.bigint()
    let envelope: SealEnvelope
    try {
      envelope = this.verifier.verify(wire, data ?? undefined)
      if (envelope.from !== peer) {
        const mismatch = new EnvelopeRejected('SENDER_MISMATCH', `envelope claims to come from ${envelope.from} but arrived from ${peer}`)
        mismatch.operation = envelope.op
        mismatch.volume = envelope.volume
        throw mismatch
      }
    } catch (error) {
      const rejected = error instanceof EnvelopeRejected ? error : new EnvelopeRejected('MALFORMED', String(error))
      this.auditRejected(peer, rejected, started)
      return { reply: { ok: false, code: 'ACCES', message: `envelope rejected (${rejected.code}): ${rejected.message}`, rejected: rejected.code }, outcome: null }
    }

    const shared = this.options.shared.get(envelope.volume)!
    const volume = shared.volume
    const ctx = new RequestContext(peer, volume.settings.uid, volume.settings.gid, `seal:${envelope.op}`, started)
    ctx.meshPeer = peer
    const mesh: MeshAudit = { peer }
    let reply: Reply
    let outcome: Outcome | null = null
    try {
      outcome = await this.run(ctx, envelope, shared, data, mesh)
      reply = { ok: true, result: outcome.result }
    } catch (error) {
      let fsalError: FsalError | null = null
      if (error instanceof FsalError) fsalError = error
      else if (error instanceof ArgumentError) fsalError = new InvalidArgument(error.message)
      if (fsalError === null) this.options.logger.error({ err: error, peer, op: envelope.op }, 'remote request failed unexpectedly')
      reply = { ok: false, code: fsalError?.code ?? 'SERVERFAULT', message: fsalError?.message ?? 'the owner node failed to run the request' }
    }
    void auditRequest(this.options.audit, this.options.nodeName, ctx, reply.ok ? 'OK' : reply.code, mesh)
    return { reply, outcome }
  }

  private auditRejected(peer: string, rejected: EnvelopeRejected, started: bigint): void {
    void this.options.audit.record({
      time: isoNow(),
      node: this.options.nodeName,
      volume: rejected.volume,
      client: peer,
      uid: null,
      gid: null,
      procedure: rejected.operation === null ? 'seal' : `seal:${rejected.operation}`,
      path: null,
      target: null,
      offset: null,
      length: null,
      bytes: null,
      status: 'ACCES',
      durationUs: Number((process.hrtime.bigint() - started) / 1000n),
      blocked: rejected.message,
      mesh: { peer, rejected: rejected.code }
    })
  }

  /** Resolves a handle of the addressed volume; a handle of any other volume is refused. */
  private async node(ctx: RequestContext, handle: Buffer, shared: SharedVolume): Promise<FsalNode> {
    const probe = new RequestContext(ctx.client, ctx.uid, ctx.gid, ctx.procedure, ctx.startedAt)
    probe.meshPeer = ctx.meshPeer
    try {
      const node = await this.options.fsal.resolve(probe, handle)
      if (probe.volume !== shared.volume) {
        ctx.blocked = `handle of volume ${probe.volume?.name} sent for volume ${shared.volume.name}`
        throw new BadHandle(ctx.blocked)
      }
      return node
    } finally {
      if (probe.blocked !== null) ctx.blocked = probe.blocked
    }
  }

  /** Asks the policies; a deny is an AccessDenied naming the deciding policies. */
  private authorize(ctx: RequestContext, envelope: SealEnvelope, shared: SharedVolume, path: string, offset: number, length: number, mesh: MeshAudit, isTarget = false): void {
    // A denied request never reaches AegisFSAL, so the audit event takes what was asked from here.
    // The second path of rename and link is in ctx.target already.
    if (!isTarget && ctx.name === null && ctx.path() !== path) ctx.name = path.slice(path.lastIndexOf('/') + 1)
    if (offset !== 0 || length !== 0) {
      ctx.offset = offset
      ctx.length = length
    }
    let decision: Decision
    if (this.options.policy === null) decision = { allowed: false, policyIds: [] }
    else {
      decision = this.options.policy.authorize({
        peerId: envelope.from,
        peerLabels: this.options.peerLabels[envelope.from] ?? [],
        operation: envelope.op,
        volume: {
          id: envelope.volume,
          owner: this.options.selfPeerId,
          accessMode: shared.volume.settings.readOnly ? 'read-only' : 'read-write',
          storageClass: shared.storageClass,
          labels: shared.labels
        },
        path,
        offset,
        length
      })
    }
    // A request checked twice (rename, link) is allowed by the permits of both checks, or denied
    // by the policies of the check that failed.
    mesh.policies = decision.allowed && mesh.decision === 'allow' ? [...new Set([...(mesh.policies ?? []), ...decision.policyIds])] : decision.policyIds
    mesh.decision = decision.allowed ? 'allow' : 'deny'
    if (!decision.allowed) {
      const by = decision.policyIds.length > 0 ? `policies ${decision.policyIds.join(', ')}` : 'no policy permitting it'
      throw new AccessDenied(`${envelope.op} on ${envelope.volume}:${path} by ${envelope.from} is denied by ${by}`)
    }
  }

  private async run(ctx: RequestContext, envelope: SealEnvelope, shared: SharedVolume, data: Buffer | null, mesh: MeshAudit): Promise<Outcome> {
    const fsal = this.options.fsal
    const volume = shared.volume
    const args = new ArgumentReader(envelope.args)
    const handle = envelope.handle === undefined ? fsal.handleOf(volume, volume.root) : Buffer.from(envelope.handle)
    const node = await this.node(ctx, handle, shared)
    ctx.volume = volume
    ctx.node = node
    const op = envelope.op
    const name = (): Buffer => Buffer.from(args.string('name'), 'utf8')
    const childPath = (dir: FsalNode, child: string): string => (dir.parent === null ? `/${child}` : `${dir.path()}/${child}`)
    const entry = (entryNode: FsalNode, attributes: Parameters<typeof encodeAttributes>[0]) => ({ h: fsal.handleOf(volume, entryNode), a: encodeAttributes(attributes) })
    const done = (result: unknown, bytes: Buffer | null = null, release: (() => void) | null = null): Outcome => ({ result, data: bytes, release })

    // Each operation first names what the policies see: the path, and the offset and length.
    switch (op) {
      case 'getattr':
      case 'access': {
        this.authorize(ctx, envelope, shared, node.path(), 0, 0, mesh)
        const attributes = await fsal.getattr(ctx, handle)
        return done(entry(ctx.node!, attributes))
      }
      case 'lookup': {
        this.authorize(ctx, envelope, shared, childPath(node, args.string('name')), 0, 0, mesh)
        const found = await fsal.lookup(ctx, handle, name())
        return done(entry(found.node, found.attributes))
      }
      case 'readlink': {
        this.authorize(ctx, envelope, shared, node.path(), 0, 0, mesh)
        const { target, attributes } = await fsal.readlink(ctx, handle)
        return done({ a: encodeAttributes(attributes) }, target)
      }
      case 'read_at': {
        const offset = args.integer('offset')
        const length = args.integer('length', MAX_READ_BYTES)
        this.authorize(ctx, envelope, shared, node.path(), offset, length, mesh)
        const read = await fsal.read(ctx, handle, offset, length)
        return done({ eof: read.eof, a: encodeAttributes(read.attributes) }, read.data, read.release)
      }
      case 'readdir': {
        const cookie = args.integer('cookie')
        const count = Math.max(1, args.integer('count', READDIR_PAGE_MAX))
        this.authorize(ctx, envelope, shared, node.path(), cookie, count, mesh)
        const verifier = cookie === 0 ? Buffer.alloc(8) : args.bytes('verifier')
        const page = await fsal.readdir(ctx, handle, cookie, verifier)
        const end = Math.min(page.listing.names.length, cookie + count)
        await fsal.fillEntries(volume, page, cookie, end - cookie)
        const names: string[] = []
        const entries: unknown[] = []
        for (let index = cookie; index < end; index++) {
          const attributes = page.entries[index]
          names.push(page.listing.names[index])
          entries.push(attributes ? entry(fsal.entryNode(volume, page.dir, page.listing, index, attributes), attributes) : null)
        }
        return done({ v: page.listing.verifier, names, entries, eof: end >= page.listing.names.length })
      }
      case 'fsstat': {
        this.authorize(ctx, envelope, shared, node.path(), 0, 0, mesh)
        return done((await fsal.fsstat(ctx, handle)).stat)
      }
      case 'setattr': {
        const changes = args.setAttributes('changes')
        this.authorize(ctx, envelope, shared, node.path(), 0, changes.sizeBytes ?? 0, mesh)
        const { after } = await fsal.setattr(ctx, handle, changes, null)
        return done({ a: after === null ? null : encodeAttributes(after) })
      }
      case 'write_at': {
        const offset = args.integer('offset')
        const stable = args.integer('stable', 2) as 0 | 1 | 2
        const bytes = data ?? Buffer.alloc(0)
        this.authorize(ctx, envelope, shared, node.path(), offset, bytes.length, mesh)
        const written = await fsal.write(ctx, handle, offset, bytes, stable)
        return done({ count: written.count, committed: written.committed, a: written.after === null ? null : encodeAttributes(written.after) })
      }
      case 'commit': {
        this.authorize(ctx, envelope, shared, node.path(), 0, 0, mesh)
        const { after } = await fsal.commit(ctx, handle)
        return done({ a: after === null ? null : encodeAttributes(after) })
      }
      case 'create':
      case 'mkdir':
      case 'symlink': {
        const childName = args.string('name')
        const mode = args.integer('mode', 0o7777)
        this.authorize(ctx, envelope, shared, childPath(node, childName), 0, 0, mesh)
        let made
        if (op === 'create') made = await fsal.create(ctx, handle, name(), { how: args.choice('how', ['unchecked', 'guarded'] as const), attributes: { mode } })
        else if (op === 'mkdir') made = await fsal.mkdir(ctx, handle, name(), { mode })
        else made = await fsal.symlink(ctx, handle, name(), args.bytes('target'), { mode })
        return done(entry(made.node, made.attributes))
      }
      case 'remove':
      case 'rmdir': {
        this.authorize(ctx, envelope, shared, childPath(node, args.string('name')), 0, 0, mesh)
        const { removed } = await fsal.remove(ctx, handle, name(), op === 'rmdir')
        return done({ a: encodeAttributes(removed) })
      }
      case 'rename':
      case 'link': {
        // Both ends must be allowed: the source (or linked file) and the new name.
        const toHandle = envelope.args.toHandle === undefined ? fsal.handleOf(volume, volume.root) : args.bytes('toHandle')
        const toName = args.string('toName')
        const toDir = await this.node(ctx, toHandle, shared)
        const fromPath = op === 'rename' ? childPath(node, args.string('name')) : node.path()
        const toPath = childPath(toDir, toName)
        ctx.target = toPath
        this.authorize(ctx, envelope, shared, fromPath, 0, 0, mesh)
        this.authorize(ctx, envelope, shared, toPath, 0, 0, mesh, true)
        if (op === 'link') {
          const { attributes } = await fsal.link(ctx, handle, toHandle, Buffer.from(toName, 'utf8'))
          return done({ a: encodeAttributes(attributes) })
        }
        const { replaced } = await fsal.rename(ctx, handle, name(), toHandle, Buffer.from(toName, 'utf8'))
        return done({ a: replaced === null ? null : encodeAttributes(replaced) })
      }
      default:
        this.authorize(ctx, envelope, shared, node.path(), 0, 0, mesh)
        throw new NotSupported(`operation ${op} is not served over the mesh`)
    }
  }
}
