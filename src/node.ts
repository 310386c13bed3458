// AegisNode: wires the configuration, AegisFSAL, the providers and the NFS endpoint together.

import { createHash, randomBytes } from 'node:crypto'
import { lookup as dnsLookup } from 'node:dns/promises'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type { Logger } from 'pino'
import type { NodeConfig, VolumeConfig } from './config/index.js'
import { mountCommand } from './config/index.js'
import { opendalServices, resolvesToMetadata } from './config/opendal.js'
import { AuditSink, isoNow } from './fsal/audit.js'
import { AegisFsal } from './fsal/fsal.js'
import { HandleCodec } from './fsal/handle.js'
import { Volume } from './fsal/volume.js'
import { MountProgram } from './nfs/mount.js'
import { NfsProgram } from './nfs/nfs3/program.js'
import { RpcServer } from './nfs/rpc/server.js'
import { BufferPool } from './providers/buffer-pool.js'
import { LocalHostProvider } from './providers/localhost/provider.js'
import type { StorageProvider } from './providers/provider.js'
import { SealProvider } from './providers/seal/provider.js'
import { EgressGuard, routeOpendalThrough } from './providers/opendal/egress-guard.js'
import { buildOperator, OpendalOptionError, operatorOptions, summarizeOpendalError } from './providers/opendal/operator.js'
import { OpenDalProvider } from './providers/opendal/provider.js'
import { SeaweedFsProvider } from './providers/seaweedfs/provider.js'
import { isReference, SecretResolver } from './secrets/index.js'
import { IdentityError, loadOrCreateIdentity } from './mesh/identity.js'
import { asPeerId, Mesh } from './mesh/mesh.js'
import { ControlServer } from './control.js'
import { PolicyError } from './mesh/policy.js'

const HANDLE_KEY_FILE = 'handle.key'
const LOCK_FILE = 'node.lock'
const HANDLE_KEY_BYTES = 32
/** Largest READ or WRITE; FSINFO advertises it and max_record_bytes must leave room for it. */
const MAX_TRANSFER_BYTES = 1024 * 1024
const RECORD_OVERHEAD_BYTES = 4096

/** Thrown when the node cannot start with its configuration. The message names what to change. */
export class StartupError extends Error {
  override name = 'StartupError'
}

/** Derives a volume's export id (fsid) from its name, so it survives restarts and reordering. */
export function exportIdOf(volumeName: string): number {
  const id = createHash('sha256').update(`aegis-export:${volumeName}`).digest().readUInt32BE(0)
  return id === 0 ? 1 : id
}

/** Reads the handle key, creating it on first start. A key others can read would let them forge handles. */
export function loadHandleKey(dataDir: string): Buffer {
  const keyPath = path.join(dataDir, HANDLE_KEY_FILE)
  if (!fs.existsSync(keyPath)) {
    fs.writeFileSync(keyPath, randomBytes(HANDLE_KEY_BYTES), { mode: 0o600, flag: 'wx' })
  }
  const stat = fs.statSync(keyPath)
  if ((stat.mode & 0o077) !== 0) {
    throw new StartupError(`${keyPath} has mode ${(stat.mode & 0o777).toString(8)}; it must be readable by its owner only: chmod 600 ${keyPath}`)
  }
  const key = fs.readFileSync(keyPath)
  if (key.length !== HANDLE_KEY_BYTES) throw new StartupError(`${keyPath} contains ${key.length} bytes, expected ${HANDLE_KEY_BYTES}; restore it from a backup or delete it (clients must then mount again)`)
  return key
}

/** Returns true when a process with this id runs (signal 0 checks without sending anything). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Returns the host directory that stores a volume: a hostPath, or the root of an OpenDAL fs volume written in the file. */
function hostDirectoryOf(volume: VolumeConfig): string | null {
  if (volume.type === 'hostPath') return String(volume.config.path)
  if (volume.type === 'opendal' && volume.provider === 'fs' && typeof volume.config.root === 'string' && !isReference(volume.config.root)) return volume.config.root
  return null
}

/** Names a volume's backend for messages, such as "opendal s3" or "seaweedfs". */
function describeBackend(volume: VolumeConfig): string {
  return volume.type === 'opendal' ? `opendal ${volume.provider}` : volume.type
}

function blockListOf(cidrs: string[]): net.BlockList {
  const list = new net.BlockList()
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/')
    const family = net.isIPv6(address) ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(prefix), family)
  }
  return list
}

export class AegisNode {
  private rpc: RpcServer | null = null
  private audit: AuditSink | null = null
  private volumes: Volume[] = []
  private lockPath: string | null = null
  private egressGuard: EgressGuard | null = null
  /** Host roots of OpenDAL fs volumes whose root is a reference, by volume name, once resolved. */
  private readonly resolvedHostRoots = new Map<string, string>()
  private readonly bufferPool = new BufferPool(MAX_TRANSFER_BYTES, 64)
  address: net.AddressInfo | null = null
  /** The node's mesh peer, or null when the configuration has no mesh section. */
  mesh: Mesh | null = null
  private control: ControlServer | null = null

  /** Resolves the `secret:` and `env:` references of volume configs, and hides their values. */
  readonly secrets: SecretResolver

  constructor(
    readonly config: NodeConfig,
    private readonly logger: Logger,
    options: { secrets?: SecretResolver } = {}
  ) {
    this.secrets = options.secrets ?? new SecretResolver({ vault: config.secrets.vault, logger: logger.child({ component: 'secrets' }) })
  }

  /** Builds the error for volume `index`, in the form configuration errors take. */
  private volumeError(index: number, field: string, detail: string): StartupError {
    return new StartupError(`${this.config.source}: volumes[${index}]${field} (volume ${this.config.volumes[index].name}): ${detail}`)
  }

  /** Checks what only the host can tell (paths, overlaps, providers) before anything is created. */
  private checkVolume(volume: VolumeConfig, index: number): void {
    if (volume.type === 'local') return
    if (volume.type === 'seaweedfs') {
      if (volume.config.filer_url === undefined) {
        throw this.volumeError(index, '.config.filer_url', 'missing; give the address of the SeaweedFS filer, such as http://127.0.0.1:8888, here or for every volume in seaweedfs.filer_url')
      }
      return
    }
    if (volume.type === 'seal') {
      if (this.config.mesh === null) throw this.volumeError(index, '.type', 'a seal volume lives on another node; add a mesh: section so that this node joins the mesh')
      const nodeId = String(volume.config.node_id)
      // A mistyped peer id would otherwise be taken for a node name that no node advertises.
      if (/^(12D3KooW|Qm|bafz)/.test(nodeId) && asPeerId(nodeId) === null) {
        throw this.volumeError(index, '.config.node_id', `${JSON.stringify(nodeId)} looks like a peer id but is not a valid one; copy the id that aegis-node id prints on the owner`)
      }
      return
    }
    if (volume.type === 'opendal') {
      // An fs root around the data directory would let clients read the handle key.
      const root = hostDirectoryOf(volume)
      if (root !== null) this.checkApartFromDataDir(index, root, '.config.root')
      return
    }

    const root = String(volume.config.path)
    let stat
    try {
      stat = fs.statSync(root)
    } catch {
      throw this.volumeError(index, '.config.path', `${root} does not exist; create the directory or fix the path`)
    }
    if (!stat.isDirectory()) throw this.volumeError(index, '.config.path', `${root} is not a directory; give the directory to export`)
    this.checkApartFromDataDir(index, root, '.config.path')
  }

  private async providerFor(volume: VolumeConfig, index: number): Promise<StorageProvider> {
    if (volume.type === 'seal') {
      const mesh = this.mesh!
      const nodeId = String(volume.config.node_id)
      return new SealProvider({
        caller: mesh,
        owner: () => mesh.ownerOf(nodeId, String(volume.config.remote_volume_id)),
        remoteVolume: String(volume.config.remote_volume_id),
        logger: this.logger.child({ component: 'provider:seal', volume: volume.name })
      })
    }
    if (volume.type === 'seaweedfs') {
      return new SeaweedFsProvider({
        filerUrl: String(volume.config.filer_url),
        rootPath: String(volume.config.path),
        collection: volume.config.collection as string | undefined,
        replication: volume.config.replication as string | undefined,
        logger: this.logger.child({ component: 'provider:seaweedfs', volume: volume.name })
      })
    }
    if (volume.type === 'opendal') return this.opendalProvider(volume, index)
    const logger = this.logger.child({ component: 'provider:localhost', volume: volume.name })
    const readOnly = volume.accessMode === 'read-only'
    if (volume.type === 'local') {
      const root = path.join(this.config.dataDir, 'volumes', volume.name)
      fs.mkdirSync(root, { recursive: true, mode: 0o755 })
      return new LocalHostProvider({ rootPath: root, logger, bufferPool: this.bufferPool, readOnly })
    }
    return new LocalHostProvider({ rootPath: String(volume.config.path), logger, bufferPool: this.bufferPool, readOnly })
  }

  /**
   * Starts the proxy that OpenDAL's HTTP requests go through, when a volume uses an OpenDAL
   * service over HTTP. Metadata services stay refused unless a volume sets disable_ec2_metadata or
   * disable_vm_metadata to "false", and then they are open to every volume of this node.
   */
  private async startEgressGuard(): Promise<void> {
    const overHttp = this.config.volumes.filter((volume) => volume.type === 'opendal' && volume.provider !== 'fs' && volume.provider !== 'memory')
    if (overHttp.length === 0) return
    const asksMetadata = (volume: VolumeConfig): boolean => opendalServices[volume.provider!].guards.some((guard) => guard.endsWith('_metadata') && volume.config[guard] === 'false')
    const optedIn = overHttp.filter(asksMetadata).map((volume) => volume.name)
    const logger = this.logger.child({ component: 'egress-guard' })
    if (optedIn.length > 0) {
      logger.warn({ volumes: optedIn }, 'OpenDAL may reach cloud metadata services, for every volume, because these volumes ask for the node\'s cloud identity')
    }
    this.egressGuard = new EgressGuard({ logger, allowMetadata: optedIn.length > 0 })
    routeOpendalThrough(await this.egressGuard.start())
  }

  private async opendalProvider(volume: VolumeConfig, index: number): Promise<StorageProvider> {
    const service = volume.provider!
    const logger = this.logger.child({ component: 'provider:opendal', volume: volume.name, service })
    let prepared
    try {
      prepared = await operatorOptions(service, volume.config, this.secrets)
    } catch (error) {
      if (!(error instanceof OpendalOptionError)) throw error
      throw this.volumeError(index, `.config.${error.option}`, error.message)
    }
    if (Object.keys(prepared.defaulted).length > 0) logger.info({ defaulted: prepared.defaulted }, 'options set by the node because the volume leaves them out')
    if (service === 'fs' && isReference(volume.config.root)) {
      // A root given as a reference is known only now; the message names the reference, not the path.
      this.checkApartFromDataDir(index, prepared.options.root!, '.config.root', `${String(volume.config.root)} (resolved)`)
      this.resolvedHostRoots.set(volume.name, prepared.options.root!)
    }
    // OpenDAL would create a missing fs root with mode 0777, since the node runs with umask 0.
    if (service === 'fs') {
      try {
        fs.mkdirSync(prepared.options.root!, { recursive: true, mode: 0o700 })
      } catch (error) {
        const rootInMessage = isReference(volume.config.root) ? String(volume.config.root) : prepared.options.root!
        throw this.volumeError(index, '.config.root', `${rootInMessage} cannot be used as the root directory (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give a directory, or a path where one can be created`)
      }
    }

    let operator
    try {
      operator = buildOperator(service, prepared.options, (text) => this.secrets.redact(text))
    } catch (error) {
      if (!(error instanceof OpendalOptionError)) throw error
      throw this.volumeError(index, '.config', error.message)
    }
    const stateDir = path.join(this.config.dataDir, 'opendal', volume.name)
    if (service === 'memory') {
      // The memory service starts empty, so the file ids of an earlier run name nothing.
      fs.rmSync(stateDir, { recursive: true, force: true })
    }
    const hostRoot = service === 'fs' ? prepared.options.root : undefined
    return new OpenDalProvider({ scheme: service, options: {}, operator, stateDir, logger, hostRoot })
  }

  /**
   * Takes the data directory for this process. Two nodes on one data directory would each count
   * only their own writes against a volume's size_limit, and interleave one audit trail.
   */
  private lockDataDir(): void {
    const lockPath = path.join(this.config.dataDir, LOCK_FILE)
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
        this.lockPath = lockPath
        return
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }

      const owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10)
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processExists(owner)) {
        throw new StartupError(`data directory ${this.config.dataDir} is in use by process ${owner} (lock file ${lockPath}); stop that node or choose another --data-dir`)
      }
      this.logger.warn({ lockPath, owner }, 'removing the lock of a node that is no longer running')
      fs.rmSync(lockPath, { force: true })
    }
    throw new StartupError(`could not take the lock ${lockPath}; remove it if no node uses ${this.config.dataDir}`)
  }

  private unlockDataDir(): void {
    if (this.lockPath === null) return
    try {
      if (fs.readFileSync(this.lockPath, 'utf8').trim() === String(process.pid)) fs.rmSync(this.lockPath)
    } catch (error) {
      this.logger.warn({ err: error, lockPath: this.lockPath }, 'could not remove the data directory lock')
    }
    this.lockPath = null
  }

  /**
   * Rejects a hostPath that contains the data directory or lies inside it: its clients could read
   * the handle key, and with it forge handles for every volume, or the audit trail.
   */
  private checkApartFromDataDir(index: number, hostPath: string, field: string, shownAs = hostPath): void {
    const volumeName = this.config.volumes[index].name
    // A path that does not exist yet is resolved through its nearest existing ancestor, so that
    // a symbolic link above it cannot hide where it will be created.
    const real = (target: string): string => {
      const missing: string[] = []
      let existing = path.resolve(target)
      for (;;) {
        try {
          return path.join(fs.realpathSync(existing), ...missing.reverse())
        } catch {
          const parent = path.dirname(existing)
          if (parent === existing) return path.resolve(target)
          missing.push(path.basename(existing))
          existing = parent
        }
      }
    }
    const volumeRoot = real(hostPath)
    const inside = (child: string, parent: string): boolean => child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`)
    const overlaps = (other: string): boolean => inside(other, volumeRoot) || inside(volumeRoot, other)

    const dataDir = real(this.config.dataDir)
    if (overlaps(dataDir)) {
      throw this.volumeError(index, field, `${shownAs} overlaps the data directory ${this.config.dataDir}, which contains the handle key and the audit trail; choose a directory outside it`)
    }
    const auditDir = real(path.dirname(this.config.audit.path))
    if (inside(auditDir, volumeRoot) || inside(volumeRoot, real(this.config.audit.path))) {
      throw this.volumeError(index, field, `${shownAs} contains the audit trail ${this.config.audit.path}; move audit.path outside the volume`)
    }
    // Nested volumes would let a client of the outer one bypass the inner one's access mode and quota.
    for (const other of this.config.volumes) {
      const otherRoot = hostDirectoryOf(other) ?? this.resolvedHostRoots.get(other.name) ?? null
      if (other.name === volumeName || otherRoot === null) continue
      if (overlaps(real(otherRoot))) {
        // A root that came from a reference is not printed.
        const otherShown = hostDirectoryOf(other) === null ? '' : ` (${otherRoot})`
        throw this.volumeError(index, field, `${shownAs} overlaps volume ${other.name}${otherShown}; volumes stored in host directories must not contain one another`)
      }
    }
  }

  async start(): Promise<net.AddressInfo> {
    const config = this.config
    // Check every volume before creating anything, so that a bad one leaves no trace behind.
    config.volumes.forEach((volume, index) => this.checkVolume(volume, index))
    for (const [index, volume] of config.volumes.entries()) {
      if (volume.type !== 'seaweedfs') continue
      const filerUrl = String(volume.config.filer_url)
      const address = await resolvesToMetadata(new URL(filerUrl).hostname, (hostname) => dnsLookup(hostname, { all: true }))
      if (address !== null) throw this.volumeError(index, '.config.filer_url', `the host of ${filerUrl} resolves to ${address}, a cloud metadata service or a link-local address; write the filer address`)
    }
    fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
    this.lockDataDir()
    try {
      return await this.startLocked()
    } catch (error) {
      await this.mesh?.stop().catch(() => {})
      this.mesh = null
      await this.egressGuard?.stop().catch(() => {})
      this.egressGuard = null
      this.unlockDataDir()
      throw error
    }
  }

  private async startLocked(): Promise<net.AddressInfo> {
    const config = this.config
    // Modes that clients ask for in CREATE, MKDIR and SETATTR must land as given, not masked.
    process.umask(0)
    if (config.mesh !== null) await this.startMesh()
    await this.startEgressGuard()
    const providers: StorageProvider[] = []
    for (const [index, volume] of config.volumes.entries()) providers.push(await this.providerFor(volume, index))
    const handles = new HandleCodec(loadHandleKey(config.dataDir))
    this.audit = new AuditSink(config.audit.path, config.audit.maxPendingEvents, this.logger.child({ component: 'audit' }))
    await this.audit.open()

    const fsalLogger = this.logger.child({ component: 'fsal' })
    this.volumes = config.volumes.map(
      (volume, index) =>
        new Volume(
          {
            name: volume.name,
            exportId: exportIdOf(volume.name),
            readOnly: volume.accessMode === 'read-only',
            sizeLimitBytes: volume.sizeLimitBytes,
            uid: volume.owner.uid,
            gid: volume.owner.gid,
            allowedClients: blockListOf(volume.allowedClients)
          },
          providers[index],
          fsalLogger
        )
    )
    for (const [index, volume] of this.volumes.entries()) {
      try {
        await volume.open()
      } catch (error) {
        const message = this.secrets.redact(error instanceof Error ? error.message : String(error))
        const backend = describeBackend(config.volumes[index])
        if (config.volumes[index].type === 'opendal') {
          const { summary, fix } = summarizeOpendalError(message)
          throw this.volumeError(index, '', `could not open the ${backend} backend: ${summary}; ${fix}`)
        }
        throw this.volumeError(index, '', `could not open the ${backend} backend: ${message}; check that it runs and that the volume config points at it`)
      }
    }
    const fsal = new AegisFsal(config.nodeName, handles, this.volumes, fsalLogger)
    if (this.mesh !== null) {
      for (const volume of config.volumes) this.mesh.storageClasses.set(volume.name, volume.storageClass)
      await this.mesh.serve(fsal, this.audit, this.volumes)
      const mesh = this.mesh
      this.control = new ControlServer(config.dataDir, { 'mesh peers': () => mesh.peers(), 'mesh volumes': () => mesh.volumes(), id: () => ({ peerId: mesh.peerId, addresses: mesh.addresses() }) }, this.logger.child({ component: 'control' }))
      await this.control.listen().catch((error: Error) => {
        this.logger.warn({ err: error }, 'control socket unavailable; aegis-node mesh peers and mesh volumes will not reach this node')
        this.control = null
      })
    }

    const nfsLogger = this.logger.child({ component: 'nfs' })
    const maxTransferBytes = Math.min(MAX_TRANSFER_BYTES, config.nfs.maxRecordBytes - RECORD_OVERHEAD_BYTES)
    const state = { fsal, writeVerifier: randomBytes(8), maxTransferBytes }
    const anyClient = blockListOf(config.volumes.flatMap((volume) => volume.allowedClients))
    this.rpc = new RpcServer({
      programs: [new MountProgram(fsal, this.audit, nfsLogger), new NfsProgram(state, this.audit, nfsLogger)],
      logger: nfsLogger,
      maxRecordBytes: config.nfs.maxRecordBytes,
      recordPool: new BufferPool(maxTransferBytes + RECORD_OVERHEAD_BYTES, 64),
      acceptClient: (address) => {
        if (anyClient.check(address, address.includes(':') ? 'ipv6' : 'ipv4')) return true
        this.auditRejectedConnection(address)
        return false
      }
    })
    this.address = await this.rpc.listen(config.nfs.port, config.nfs.bind)

    this.logger.info({ address: this.address.address, port: this.address.port }, `NFS (MOUNT and NFSv3) listening on ${this.address.address}:${this.address.port}`)
    for (const volume of config.volumes) {
      this.logger.info({ volume: volume.name, export: `/${volume.name}` }, mountCommand(config, volume, this.address.port))
    }
    return this.address
  }

  /** Loads the identity and policies and starts the libp2p peer; each failure names its file. */
  private async startMesh(): Promise<void> {
    const mesh = this.config.mesh!
    try {
      const identity = await loadOrCreateIdentity(this.config.dataDir)
      this.config.volumes.forEach((volume, index) => {
        if (volume.type === 'seal' && asPeerId(String(volume.config.node_id)) === identity.peerId) {
          throw this.volumeError(index, '.config.node_id', `${identity.peerId} is this node itself; a seal volume names another node (serve the volume here as a local or hostPath volume instead)`)
        }
      })
      this.mesh = await Mesh.start({ config: mesh, nodeName: this.config.nodeName, identity, logger: this.logger })
    } catch (error) {
      if (error instanceof IdentityError || error instanceof PolicyError) throw new StartupError(error.message)
      if (String((error as Error).message).includes('EADDRINUSE')) {
        throw new StartupError(`mesh.listen: an address of ${mesh.listen.join(', ')} is already in use; stop the other process or choose another port`)
      }
      throw error
    }
    this.logger.info({ peer: this.mesh.peerId, addresses: this.mesh.addresses() }, `mesh peer ${this.mesh.peerId} listening on ${this.mesh.addresses().join(', ')}`)
  }

  /** Reloads the Cedar policies; false when the new set was refused (the old one stays). */
  reloadPolicies(): boolean {
    return this.mesh?.reloadPolicies() ?? false
  }

  /** Audits a connection from an address that no volume allows; the request never reaches a program. */
  private auditRejectedConnection(address: string): void {
    void this.audit?.record({
      time: isoNow(),
      node: this.config.nodeName,
      volume: null,
      client: address,
      uid: null,
      gid: null,
      procedure: 'CONNECT',
      path: null,
      target: null,
      offset: null,
      length: null,
      bytes: null,
      status: 'ACCES',
      durationUs: 0,
      blocked: `client ${address} is not in the allowed_clients of any volume`
    })
  }

  /** Stops accepting, lets calls in flight finish, then flushes the audit trail and closes volumes. */
  async stop(): Promise<void> {
    if (this.rpc) await this.rpc.close()
    if (this.control) await this.control.close()
    this.control = null
    if (this.mesh) await this.mesh.stop()
    this.mesh = null
    for (const volume of this.volumes) await volume.close()
    if (this.egressGuard) await this.egressGuard.stop()
    this.egressGuard = null
    if (this.audit) await this.audit.close()
    this.unlockDataDir()
    this.rpc = null
    this.audit = null
    this.logger.info('node stopped')
  }
}
