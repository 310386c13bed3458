// One volume behind AegisFSAL: its provider, its node table, its quota and its directory listings.

import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type net from 'node:net'
import type { Logger } from 'pino'
import type { StorageProvider } from '../providers/provider.js'
import { BadCookie, QuotaExceeded, Stale } from './errors.js'
import { FsalNode } from './node.js'
import type { FileAttributes } from './types.js'

export interface VolumeSettings {
  name: string
  /** The export's fsid; derived from the name so that it is the same after a restart. */
  exportId: number
  readOnly: boolean
  sizeLimitBytes: number | null
  uid: number
  gid: number
  /** Client networks allowed to mount and use this export. */
  allowedClients: net.BlockList
}

/** A snapshot of a directory's names; READDIR cookies are positions in it. */
export interface Listing {
  verifier: Buffer
  names: string[]
  /** Attributes of `names`, filled as pages are sent; see Volume.entriesForPage. */
  entryAttributes: Array<FileAttributes | null | undefined> | null
  /** The node of each name, filled as pages are sent; checked against the name's fileId. */
  entryNodes: Array<FsalNode | undefined>
  entryAttributesAtMs: number
  entryAttributesModifications: number
  entriesVersion: number
  mtimeSec: number
  mtimeNsec: number
  ctimeSec: number
  ctimeNsec: number
  /** When the provider was asked for the names. */
  takenAtMs: number
}

const LISTINGS_PER_DIRECTORY = 4
/**
 * Age up to which a listing is reused for a READDIR from cookie 0 when the provider's directory
 * times do not show entries made around the node (StorageProvider.directoryTimesTrackEntries).
 */
const UNTRACKED_LISTING_REUSE_MS = 1000
const LISTED_DIRECTORIES_MAX = 256
const RESCAN_INTERVAL_MS = 2_000
const CLIENT_DECISIONS_MAX = 4096
const ENTRY_ATTRIBUTES_TTL_MS = 1_000
const MISSING_OBJECTS_MAX = 4096

/**
 * The bytes an object counts for in its volume's usage: the size of a file, of a symbolic link
 * (its target) and of a directory (its entry blocks), so that links and directories cannot fill
 * a disk past the limit either. Other objects count nothing.
 * NOTE: a directory is counted at the size it had when created or scanned; the blocks it gains as
 * entries are added are not counted until the next start.
 */
export function countedBytes(attributes: FileAttributes): number {
  return attributes.type === 'file' || attributes.type === 'symlink' || attributes.type === 'dir' ? attributes.sizeBytes : 0
}

/**
 * A shared/exclusive lock for async functions. Shared holders run together; an exclusive holder
 * runs alone. Waiters are served in arrival order, so a waiting exclusive holder is not starved
 * by a stream of shared ones.
 */
export class SharedExclusiveLock {
  private sharedHolders = 0
  private exclusiveHeld = false
  private readonly waiting: Array<{ exclusive: boolean; start: () => void }> = []

  shared<T>(action: () => Promise<T>): Promise<T> {
    return this.run(false, action)
  }

  exclusive<T>(action: () => Promise<T>): Promise<T> {
    return this.run(true, action)
  }

  private async run<T>(exclusive: boolean, action: () => Promise<T>): Promise<T> {
    if (!this.canStart(exclusive)) await new Promise<void>((start) => this.waiting.push({ exclusive, start }))
    else this.take(exclusive)
    try {
      return await action()
    } finally {
      if (exclusive) this.exclusiveHeld = false
      else this.sharedHolders--
      this.wakeWaiters()
    }
  }

  private canStart(exclusive: boolean): boolean {
    if (this.waiting.length > 0 || this.exclusiveHeld) return false
    return !exclusive || this.sharedHolders === 0
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusiveHeld = true
    else this.sharedHolders++
  }

  private wakeWaiters(): void {
    while (this.waiting.length > 0 && !this.exclusiveHeld) {
      const next = this.waiting[0]
      if (next.exclusive && this.sharedHolders > 0) return
      this.waiting.shift()
      this.take(next.exclusive)
      next.start()
      if (next.exclusive) return
    }
  }
}

export class Volume {
  // NOTE: the table keeps every object a client has looked up or a scan has found until it is
  // removed. A volume of millions of files costs memory in proportion.
  readonly nodes = new Map<number, FsalNode>()
  root!: FsalNode
  usedBytes = 0
  /** Orders namespace changes; see AegisFsal.serialized. */
  readonly namespaceLock = new SharedExclusiveLock()
  /** Bumped when a modifying request starts and when it ends; cached entry attributes check it. */
  modifications = 0
  private readonly listings = new Map<FsalNode, Listing[]>()
  private readonly clientDecisions = new Map<string, boolean>()
  private readonly verifierPrefix = randomBytes(4)
  private nextListing = 1
  private lastScanAt = 0
  private scanning: Promise<void> | null = null
  private lastScanModifications = -1
  private lastScanStartedAt = 0
  private lastScanDurationMs = 0
  /** Objects that a rescan did not find, keyed "fileId:generation", oldest first. */
  private readonly missing = new Map<string, true>()
  /** The rescan that callers are waiting for, started when the interval since the last one ends. */
  private nextScan: Promise<void> | null = null

  constructor(
    readonly settings: VolumeSettings,
    readonly provider: StorageProvider,
    private readonly logger: Logger
  ) {}

  get name(): string {
    return this.settings.name
  }

  /** Returns true when `address` may use this export; BlockList checks are slow enough to memoize. */
  clientAllowed(address: string): boolean {
    let allowed = this.clientDecisions.get(address)
    if (allowed === undefined) {
      allowed = this.settings.allowedClients.check(address, address.includes(':') ? 'ipv6' : 'ipv4')
      if (this.clientDecisions.size >= CLIENT_DECISIONS_MAX) this.clientDecisions.clear()
      this.clientDecisions.set(address, allowed)
    }
    return allowed
  }

  /** Opens the provider and, for a volume with a size_limit, scans it to learn its usage. */
  async open(): Promise<void> {
    const attributes = await this.provider.open()
    this.root = new FsalNode(attributes.fileId, attributes.generation, 'dir', null, '')
    this.nodes.set(this.root.fileId, this.root)
    if (this.settings.sizeLimitBytes !== null) await this.scan(true)
  }

  async close(): Promise<void> {
    await this.provider.close()
  }

  /**
   * Walks the whole volume to rebuild the node table. With countUsage (at open, before any
   * request) it also recounts usage; a rescan while requests run leaves usage to the incremental
   * accounting, because writes landing during the walk would make a recount wrong.
   */
  private async scan(countUsage: boolean): Promise<void> {
    const started = Date.now()
    const modifications = this.modifications
    const counted = new Set<number>()
    let usedBytes = 0
    let objects = 0
    await this.provider.scan(this.root, (parent, name, attributes) => {
      objects++
      const node = this.nodeFor(parent, name, attributes)
      if (countUsage && !counted.has(attributes.fileId)) {
        counted.add(attributes.fileId)
        usedBytes += countedBytes(attributes)
        if (attributes.type === 'dir') node.chargedBytes = attributes.sizeBytes
      }
      return node
    })

    if (countUsage) this.usedBytes = usedBytes
    this.lastScanAt = Date.now()
    this.lastScanDurationMs = this.lastScanAt - started
    this.lastScanModifications = modifications
    this.logger.info({ volume: this.name, objects, usedBytes: this.usedBytes, ms: this.lastScanAt - started }, countUsage ? 'volume scanned' : 'volume rescanned')
  }

  /** Returns the node for an object found as `name` in `parent`, creating or re-parenting it. */
  nodeFor(parent: FsalNode, name: string, attributes: FileAttributes): FsalNode {
    const existing = this.nodes.get(attributes.fileId)
    if (existing !== undefined && existing.generation === attributes.generation && existing !== this.root) {
      if (existing.parent !== parent && parent.hasAncestor(existing)) {
        // Only a stale lookup can claim a directory lives below itself; keep the table a tree.
        this.logger.warn({ volume: this.name, fileId: existing.fileId, path: existing.path() }, 'rejected recording a directory inside itself; the node is forgotten')
        this.forget(existing)
        const node = new FsalNode(attributes.fileId, attributes.generation, attributes.type, parent, name)
        this.nodes.set(node.fileId, node)
        return node
      }
      existing.parent = parent
      existing.name = name
      existing.type = attributes.type
      return existing
    }
    if (existing === this.root) return existing

    if (existing !== undefined) this.forget(existing)
    const node = new FsalNode(attributes.fileId, attributes.generation, attributes.type, parent, name)
    this.nodes.set(node.fileId, node)
    return node
  }

  /** Drops a node whose object is gone. */
  forget(node: FsalNode): void {
    if (node === this.root) return
    if (this.nodes.get(node.fileId) === node) this.nodes.delete(node.fileId)
    this.listings.delete(node)
    this.provider.forget(node)
  }

  /**
   * Finds the node of a handle. After a restart the table is empty until a lookup or a scan finds
   * the object, so an unknown fileId triggers a rescan (at most one every two seconds).
   */
  async resolve(fileId: number, generation: number): Promise<FsalNode> {
    let node = this.nodes.get(fileId)
    if (node === undefined && !this.knownMissing(fileId, generation) && (await this.rescan())) node = this.nodes.get(fileId)
    if (node === undefined || node.generation !== generation) {
      this.rememberMissing(fileId, generation)
      throw new Stale(`volume ${this.name} has no object with fileid ${fileId}`)
    }
    return node
  }

  /** True for an object a rescan already looked for in vain; its handles get STALE at once. */
  knownMissing(fileId: number, generation: number): boolean {
    return this.missing.has(`${fileId}:${generation}`)
  }

  rememberMissing(fileId: number, generation: number): void {
    this.missing.set(`${fileId}:${generation}`, true)
    if (this.missing.size > MISSING_OBJECTS_MAX) this.missing.delete(this.missing.keys().next().value as string)
  }

  /**
   * Rescans the volume to find objects that moved without this node seeing it: a file whose
   * remembered name was removed while another hard link remains, or a rename made on the host.
   * Returns false without scanning when nothing changed through this node since a scan less than
   * RESCAN_INTERVAL_MS old. Otherwise the caller waits for the next scan: scans start at most once
   * per RESCAN_INTERVAL_MS (or ten times the last scan's duration), and an object a scan did not
   * find is remembered, so repeating a stale handle costs no further scan.
   */
  async rescan(): Promise<boolean> {
    const recent = Date.now() - this.lastScanAt < RESCAN_INTERVAL_MS
    if (this.nextScan === null && recent && this.modifications === this.lastScanModifications) return false

    if (this.nextScan === null) {
      // Scans of a large volume take long, so they may use at most a tenth of the time.
      const intervalMs = Math.max(RESCAN_INTERVAL_MS, 10 * this.lastScanDurationMs)
      const delayMs = Math.max(0, this.lastScanStartedAt + intervalMs - Date.now())
      this.nextScan = (async () => {
        if (this.scanning !== null) await this.scanning.catch(() => {})
        await sleep(delayMs)
        this.nextScan = null
        this.lastScanStartedAt = Date.now()
        this.scanning = this.scan(false).finally(() => {
          this.scanning = null
        })
        await this.scanning
      })()
    }
    await this.nextScan
    return true
  }

  // Quota. All checks and updates run synchronously, so concurrent requests cannot both pass a
  // check that only one of them fits in.

  /** Reserves the bytes that growing `node` to `endBytes` adds and returns them; throws QuotaExceeded over the limit. */
  reserveGrowth(node: FsalNode, currentSizeBytes: number, endBytes: number): number {
    if (node.quotaSizeBytes < 0) node.quotaSizeBytes = currentSizeBytes
    const growth = Math.max(0, endBytes - node.quotaSizeBytes)
    const limit = this.settings.sizeLimitBytes
    if (growth > 0 && limit !== null && this.usedBytes + growth > limit) {
      throw new QuotaExceeded(
        `volume ${this.name} would grow to ${this.usedBytes + growth} bytes, over its size_limit of ${limit} bytes`
      )
    }
    this.usedBytes += growth
    node.quotaSizeBytes += growth
    return growth
  }

  /** Counts `bytes` against the limit before the object they belong to exists; throws QuotaExceeded. */
  holdBytes(bytes: number): void {
    const limit = this.settings.sizeLimitBytes
    if (bytes > 0 && limit !== null && this.usedBytes + bytes > limit) {
      throw new QuotaExceeded(`volume ${this.name} would grow to ${this.usedBytes + bytes} bytes, over its size_limit of ${limit} bytes`)
    }
    this.usedBytes += bytes
  }

  releaseBytes(bytes: number): void {
    this.usedBytes -= bytes
  }

  /** Counts bytes that an operation already added, whatever the limit (the object exists now). */
  chargeBytes(bytes: number): void {
    this.usedBytes += bytes
  }

  /** Sets a file's counted size after it changed (truncate, or a failed write), adjusting usage. */
  settleSize(node: FsalNode, sizeBytes: number): void {
    if (node.pendingWrites > 0) return
    if (node.quotaSizeBytes >= 0) this.usedBytes += sizeBytes - node.quotaSizeBytes
    node.quotaSizeBytes = sizeBytes
  }

  /**
   * Accounts for an object that lost a name. `attributes.nlink` counts the names it still has, as
   * the provider's remove and rename report it, and only an object left with none frees its bytes.
   */
  released(node: FsalNode | undefined, attributes: FileAttributes): void {
    if (attributes.nlink > 0 && attributes.type !== 'dir') return
    let size = countedBytes(attributes)
    // A directory frees what it was charged, not its current size: its blocks grow with entries
    // that were never charged.
    if (attributes.type === 'dir') size = node?.chargedBytes ?? 0
    else if (attributes.type === 'file' && node !== undefined && node.quotaSizeBytes >= 0) size = node.quotaSizeBytes
    if (size > this.usedBytes) {
      this.logger.warn({ volume: this.name, usedBytes: this.usedBytes, released: size }, 'usage would go below zero; the count was off, set to zero')
      size = this.usedBytes
    }
    this.usedBytes -= size
  }

  /** Records that a directory's entries changed through this node, so new listings are taken. */
  touched(dir: FsalNode): void {
    dir.entriesVersion++
  }

  // Directory listings.

  /**
   * Returns the attributes of a listing's names, filling them a window at a time: a page stats
   * only the names it can send, so a directory of a million entries costs no more per page than
   * a small one. Filled attributes are reused while no modifying request has started or ended
   * on the volume, for at most ENTRY_ATTRIBUTES_TTL_MS, so changes made through this node always
   * show. An entry is undefined until filled and null for a name that is gone.
   * NOTE: a change made directly on the host can take up to ENTRY_ATTRIBUTES_TTL_MS to show in
   * READDIRPLUS, like the attribute cache of an NFS client.
   */
  entriesForPage(listing: Listing): Array<FileAttributes | null | undefined> {
    const now = Date.now()
    const fresh = listing.entryAttributes !== null && now - listing.entryAttributesAtMs < ENTRY_ATTRIBUTES_TTL_MS && listing.entryAttributesModifications === this.modifications
    if (!fresh) {
      listing.entryAttributes = new Array(listing.names.length)
      listing.entryAttributesAtMs = now
      listing.entryAttributesModifications = this.modifications
    }
    return listing.entryAttributes!
  }

  /**
   * Stats the names `start` to `start + count` of a listing into `entries` (the array
   * entriesForPage returned to this page, which a later page may have replaced meanwhile).
   */
  async fillEntries(dir: FsalNode, listing: Listing, entries: Array<FileAttributes | null | undefined>, start: number, count: number): Promise<void> {
    const end = Math.min(listing.names.length, start + count)
    const attributes = await this.provider.lookupAll(dir, listing.names.slice(start, end))
    for (let i = start; i < end; i++) if (entries[i] === undefined) entries[i] = attributes[i - start]
  }

  /**
   * Returns the listing a READDIR continues from: a fresh one for cookie 0 when the directory
   * changed, otherwise the one whose verifier the client sent. Throws BadCookie when that
   * listing is gone (evicted, or taken before a restart).
   */
  async listing(dir: FsalNode, attributes: FileAttributes, cookie: number, verifier: Buffer): Promise<Listing> {
    const kept = this.listings.get(dir) ?? []
    if (cookie !== 0) {
      const found = kept.find((listing) => listing.verifier.equals(verifier))
      if (found === undefined) throw new BadCookie(`cookie verifier of ${dir.path()} is not current; restart the listing from cookie 0`)
      return found
    }

    const newest = kept[kept.length - 1]
    const now = Date.now()
    if (
      newest !== undefined &&
      (this.provider.directoryTimesTrackEntries !== false || now - newest.takenAtMs < UNTRACKED_LISTING_REUSE_MS) &&
      newest.entriesVersion === dir.entriesVersion &&
      newest.mtimeSec === attributes.mtimeSec &&
      newest.mtimeNsec === attributes.mtimeNsec &&
      newest.ctimeSec === attributes.ctimeSec &&
      newest.ctimeNsec === attributes.ctimeNsec
    ) {
      return newest
    }

    const names = await this.provider.readdir(dir)
    names.sort()
    const listingVerifier = Buffer.alloc(8)
    this.verifierPrefix.copy(listingVerifier, 0)
    listingVerifier.writeUInt32BE(this.nextListing++ >>> 0, 4)
    const listing: Listing = {
      verifier: listingVerifier,
      names,
      entryAttributes: null,
      entryNodes: new Array(names.length),
      entryAttributesAtMs: 0,
      entryAttributesModifications: 0,
      entriesVersion: dir.entriesVersion,
      mtimeSec: attributes.mtimeSec,
      mtimeNsec: attributes.mtimeNsec,
      ctimeSec: attributes.ctimeSec,
      ctimeNsec: attributes.ctimeNsec,
      takenAtMs: now
    }
    kept.push(listing)
    if (kept.length > LISTINGS_PER_DIRECTORY) kept.shift()
    this.listings.delete(dir)
    this.listings.set(dir, kept)
    if (this.listings.size > LISTED_DIRECTORIES_MAX) this.listings.delete(this.listings.keys().next().value as FsalNode)
    return listing
  }
}
