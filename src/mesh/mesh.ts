// The node's part in the mesh: its libp2p peer, the connections it keeps to bootstrap peers, the
// policies, the owner side of SEAL for the volumes it shares, and the calling side for its seal
// volumes.

import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { MeshConfig } from '../config/index.js'
import type { AuditSink } from '../fsal/audit.js'
import type { AegisFsal } from '../fsal/fsal.js'
import type { Volume } from '../fsal/volume.js'
import type { SealRequest } from './envelope.js'
import type { NodeIdentity } from './identity.js'
import { AdvertService, type PeerView, type VolumeAdvert } from './adverts.js'
import { createMeshNode, isTrusted, type MeshNode } from './libp2p.js'
import { PolicyEngine } from './policy.js'
import { RemoteUnavailable, SealClient, type RemoteReply } from './seal-client.js'
import { SealService, type SharedVolume } from './seal-service.js'

const REDIAL_FIRST_MS = 500
const REDIAL_MAX_MS = 30_000
/** A connection that closes sooner than this after opening does not reset the backoff (an owner that drops us at once). */
const STABLE_CONNECTION_MS = 10_000

/** Returns the peer id in a string, or null when it is not one (then it is a node name). */
export function asPeerId(text: string): string | null {
  try {
    return peerIdFromString(text).toString()
  } catch {
    return null
  }
}

export interface MeshOptions {
  config: MeshConfig
  nodeName: string
  identity: NodeIdentity
  logger: Logger
}

export class Mesh {
  readonly client: SealClient
  readonly policy: PolicyEngine | null
  private service: SealService | null = null
  private adverts: AdvertService | null = null
  private readonly redials = new Map<string, { timer: NodeJS.Timeout | null; delayMs: number; address: string; connectedAt: number }>()
  private stopped = false
  private readonly log: Logger

  private constructor(
    readonly node: MeshNode,
    private readonly options: MeshOptions,
    policy: PolicyEngine | null
  ) {
    this.policy = policy
    this.log = options.logger.child({ component: 'mesh' })
    this.client = new SealClient({ node, identity: options.identity, logger: options.logger.child({ component: 'seal-client' }), timeoutMs: options.config.requestTimeoutMs })
  }

  /** Loads the policies (refusing to start on an invalid set), then starts the libp2p peer. */
  static async start(options: MeshOptions): Promise<Mesh> {
    const { config, logger } = options
    let policy: PolicyEngine | null = null
    if (config.policyDir !== null) {
      policy = new PolicyEngine(config.policyDir, logger.child({ component: 'policy' }))
      policy.load()
    } else if (config.share.length > 0) {
      logger.child({ component: 'mesh' }).warn('mesh.policy_dir is not set, so every request from other nodes is denied')
    }
    const node = await createMeshNode({ identity: options.identity, listen: config.listen, trustedPeers: config.trustedPeers, logger: logger.child({ component: 'libp2p' }) })
    return new Mesh(node, options, policy)
  }

  get peerId(): string {
    return this.node.peerId.toString()
  }

  addresses(): string[] {
    return this.node.getMultiaddrs().map(String)
  }

  /** Starts serving the shared volumes to other nodes, through `fsal`. */
  async serve(fsal: AegisFsal, audit: AuditSink, volumes: readonly Volume[]): Promise<void> {
    const { config } = this.options
    const shared = new Map<string, SharedVolume>()
    for (const entry of config.share) {
      const volume = volumes.find((candidate) => candidate.name === entry.volume)
      if (volume === undefined) continue
      shared.set(entry.volume, { volume, labels: entry.labels, storageClass: this.storageClasses.get(entry.volume) ?? 'persistent' })
    }
    this.service = new SealService({
      node: this.node,
      selfPeerId: this.peerId,
      nodeName: this.options.nodeName,
      fsal,
      audit,
      logger: this.options.logger.child({ component: 'seal-service' }),
      shared,
      peerLabels: config.peerLabels,
      policy: this.policy,
      maxClockSkewMs: config.maxClockSkewMs
    })
    await this.service.start()

    this.adverts = new AdvertService({
      node: this.node,
      identity: this.options.identity,
      nodeName: this.options.nodeName,
      logger: this.options.logger.child({ component: 'adverts' }),
      refreshMs: config.advertRefreshMs,
      ttlMs: config.advertTtlMs,
      trustsPeer: (peerId) => isTrusted(config.trustedPeers, peerId)
    })
    this.adverts.setVolumes(
      [...shared.values()].map(({ volume, storageClass }) => ({
        id: volume.name,
        name: volume.name,
        accessMode: volume.settings.readOnly ? 'read-only' : 'read-write',
        storageClass,
        sizeLimitBytes: volume.settings.sizeLimitBytes
      }))
    )
    await this.adverts.start()
    // Dialed only now: a peer connected before the adverts service starts is not asked for its
    // records until its next refresh.
    this.keepConnected()
  }

  /** Peers this node is connected to or has records from. */
  peers(): PeerView[] {
    return this.adverts?.peers() ?? []
  }

  /** Volumes shared in the mesh, this node's own included. */
  volumes(): VolumeAdvert[] {
    return this.adverts?.volumes() ?? []
  }

  /** Storage classes of the node's volumes, which the policies see on a shared volume. */
  readonly storageClasses = new Map<string, string>()

  /**
   * Resolves a seal volume's `node_id` to the owner's peer id: a peer id is taken as it is, and
   * a node name is looked up among the volumes advertised in the mesh.
   */
  ownerOf(nodeId: string, volumeId: string): string {
    const peerId = asPeerId(nodeId)
    if (peerId !== null) return peerId
    const advert = this.adverts?.find(nodeId, volumeId)
    if (advert !== undefined) return advert.owner
    throw new RemoteUnavailable(`no node named ${JSON.stringify(nodeId)} advertises volume ${JSON.stringify(volumeId)} in the mesh yet; check node_id, or use the owner's peer id`)
  }

  call(peerId: string, request: SealRequest): Promise<RemoteReply> {
    return this.client.call(peerId, request)
  }

  /** Reloads the policies (SIGHUP); an invalid set is refused and the current one stays. */
  reloadPolicies(): boolean {
    if (this.policy === null) {
      this.log.warn('no mesh.policy_dir is configured; nothing to reload')
      return false
    }
    return this.policy.reload()
  }

  /**
   * Dials every bootstrap peer and dials it again, with exponential backoff, whenever the
   * connection goes away, for as long as the node runs.
   */
  private keepConnected(): void {
    const logger = this.log
    for (const address of this.options.config.bootstrap) {
      const peerId = address.slice(address.lastIndexOf('/p2p/') + 5)
      this.redials.set(peerId, { timer: null, delayMs: REDIAL_FIRST_MS, address, connectedAt: 0 })
      this.dial(peerId)
    }
    this.node.addEventListener('peer:connect', (event) => {
      const peerId = event.detail.toString()
      const state = this.redials.get(peerId)
      if (state === undefined) return
      state.connectedAt = Date.now()
      logger.info({ peer: peerId }, 'connected to bootstrap peer')
    })
    this.node.addEventListener('peer:disconnect', (event) => {
      const peerId = event.detail.toString()
      const state = this.redials.get(peerId)
      if (state === undefined || this.stopped) return
      const lastedMs = Date.now() - state.connectedAt
      if (lastedMs >= STABLE_CONNECTION_MS) state.delayMs = REDIAL_FIRST_MS
      const delayMs = state.delayMs
      state.delayMs = Math.min(REDIAL_MAX_MS, state.delayMs * 2)
      const hint = lastedMs < STABLE_CONNECTION_MS ? '; a peer that closes at once may not trust this node: add this peer id to its mesh.trusted_peers' : ''
      logger.warn({ peer: peerId, lastedMs, retryMs: delayMs }, `connection to a bootstrap peer lost after ${lastedMs} ms; dialing again${hint}`)
      this.schedule(peerId, delayMs)
    })
  }

  private schedule(peerId: string, delayMs: number): void {
    const state = this.redials.get(peerId)
    if (state === undefined || state.timer !== null || this.stopped) return
    state.timer = setTimeout(() => {
      state.timer = null
      this.dial(peerId)
    }, delayMs)
    state.timer.unref()
  }

  private dial(peerId: string): void {
    const state = this.redials.get(peerId)
    if (state === undefined || this.stopped) return
    this.node.dial(multiaddr(state.address), { signal: AbortSignal.timeout(10_000) }).then(
      () => {},
      (error: Error) => {
        this.log.warn({ peer: peerId, address: state.address, retryMs: state.delayMs, reason: error.message }, 'bootstrap peer unreachable; dialing again later')
        const delayMs = state.delayMs
        state.delayMs = Math.min(REDIAL_MAX_MS, state.delayMs * 2)
        this.schedule(peerId, delayMs)
      }
    )
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const state of this.redials.values()) if (state.timer !== null) clearTimeout(state.timer)
    this.client.close()
    if (this.adverts !== null) await this.adverts.stop()
    if (this.service !== null) await this.service.stop()
    await this.node.stop()
  }
}
