// The interface between the provider contract suite and one storage backend. A backend joins the
// suite by implementing ProviderFixture in its own `<backend>.contract.test.ts` and calling
// describeProviderContract with it.

import type { StorageProvider } from '../../src/providers/provider.js'

/**
 * Optional behaviour of a backend. A case that needs a capability the fixture sets to false is
 * reported as skipped, with the capability named in the skip note.
 */
export interface ProviderCapabilities {
  /** SYMLINK and READLINK. */
  symlinks: boolean
  /** LINK: a regular file with more than one name. */
  hardLinks: boolean
  /**
   * Gaps of gigabytes that cost no storage: a write at an offset beyond 4 GiB, a SETATTR size of
   * 5 GiB. Small gaps are not optional, because StorageProvider.write fills any gap with zeros.
   */
  sparse: boolean
}

/**
 * Direct access to what the backend stores, bypassing the provider: a local directory, the objects
 * under a bucket prefix, a filer's namespace. Paths are lists of names from the volume root, so
 * that a name containing a separator or an escape character of the backend reaches it unchanged.
 */
export interface BackendInspector {
  /** Returns the bytes of a regular file, or null when nothing is stored under the path. */
  readFile(path: readonly string[]): Promise<Buffer | null>
  /** Returns the names in a directory, or null when nothing is stored under the path. */
  list(path: readonly string[]): Promise<string[] | null>
  /**
   * Stores `data` as a regular file, creating missing directories, as another client of the
   * backend would. Unlike the paths above, `path` contains the backend's own names, so a provider
   * that escapes names shows this file under the names it decodes from them.
   */
  writeFile(path: readonly string[], data: Buffer): Promise<void>
}

/** One empty volume on the backend, made for one case. */
export interface ProviderInstance {
  /** A provider that is not opened yet; the suite opens it through a Volume. */
  provider: StorageProvider
  /** Absent when the backend cannot be read around the provider; the backend-state cases are then skipped. */
  inspect?: BackendInspector
  /**
   * Returns a new, unopened provider over the same stored data, as a node restart creates it. The
   * suite closes the previous provider first. Absent when the backend keeps nothing across a
   * restart; the restart cases are then skipped.
   */
  reopen?(): Promise<StorageProvider>
  /** Deletes the volume's data and releases the backend's resources; called after the providers are closed. */
  cleanup(): Promise<void>
}

export interface ProviderFixture {
  capabilities: ProviderCapabilities
  /** Limit for each case, for backends slower than the vitest testTimeout allows (5,000 CREATEs over HTTP, say). */
  caseTimeoutMs?: number
  /**
   * Cases that the server the fixture runs cannot pass for a reason outside the provider: case
   * title to the reason, which is reported as the skip note. A limit of the provider is a failure,
   * not an entry here.
   */
  serverLimitations?: Readonly<Record<string, string>>
  /** Creates an empty volume; each case gets its own, so cases never see each other's files. */
  create(): Promise<ProviderInstance>
}
