// The provider contract against SeaweedFS: each case gets its own directory in one fake filer
// (the filer's HTTP API, in memory). The filer has no symbolic or hard links, and gigabyte-sized
// sparse files would be held in memory, so those cases are skipped.

import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { SeaweedFsProvider } from '../../src/providers/seaweedfs/provider.js'
import { startFakeFiler, type FakeFiler } from '../helpers/seaweedfs-fake.js'
import { describeProviderContract, type ProviderFixture } from './contract.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
let filer: FakeFiler

/** Stores `data` at `path` with a PUT to the filer's HTTP API, which creates missing directories. */
async function putToFiler(filerUrl: string, path: string, data: Buffer): Promise<void> {
  const response = await fetch(filerUrl + path.split('/').map(encodeURIComponent).join('/'), { method: 'PUT', body: data })
  if (!response.ok) throw new Error(`PUT ${path} to the filer failed: HTTP ${response.status} ${await response.text()}`)
}

beforeAll(async () => {
  filer = await startFakeFiler()
})

afterAll(async () => {
  await filer?.stop()
})

const seaweedFsFixture: ProviderFixture = {
  capabilities: { symlinks: false, hardLinks: false, sparse: false },
  caseTimeoutMs: 60_000,
  async create() {
    const rootPath = `/contract/${randomUUID()}`
    const provider = () => new SeaweedFsProvider({ filerUrl: filer.url, rootPath, logger })
    const filerPath = (names: readonly string[]) => [rootPath, ...names].join('/')
    return {
      provider: provider(),
      inspect: {
        readFile: async (names) => filer.readFile(filerPath(names)) ?? null,
        list: async (names) => filer.listDirectory(filerPath(names)) ?? null,
        writeFile: (names, data) => putToFiler(filer.url, filerPath(names), data)
      },
      reopen: async () => provider(),
      cleanup: async () => {}
    }
  }
}

describeProviderContract('SeaweedFS', seaweedFsFixture)

// The same contract against a real filer, when SEAWEEDFS_FILER_URL names one (the docker compose
// cluster has one). Each case gets a directory under /aegis-node-contract/, and the inspector
// reads through the filer's HTTP API.
const realFilerUrl = process.env.SEAWEEDFS_FILER_URL?.replace(/\/+$/, '')

function filerUrlOf(path: string): string {
  return realFilerUrl + path.split('/').map(encodeURIComponent).join('/')
}

async function readFromFiler(path: string): Promise<Buffer | null> {
  const response = await fetch(filerUrlOf(path))
  if (response.status === 404) return null
  const entry = await fetch(`${filerUrlOf(path)}?metadata=true`, { headers: { Accept: 'application/json' } })
  // A directory responds to GET with its listing, so only an entry without the directory bit is a file.
  if (entry.ok && ((((await entry.json()) as { Mode?: number }).Mode ?? 0) & 0x80000000) !== 0) return null
  return Buffer.from(await response.arrayBuffer())
}

async function listFiler(path: string): Promise<string[] | null> {
  const names: string[] = []
  let lastFileName = ''
  for (;;) {
    const response = await fetch(`${filerUrlOf(path)}/?limit=1000&lastFileName=${encodeURIComponent(lastFileName)}`, { headers: { Accept: 'application/json' } })
    if (response.status === 404) return null
    const listing = (await response.json()) as { Entries?: Array<{ FullPath: string }> | null; ShouldDisplayLoadMore?: boolean; LastFileName?: string }
    for (const entry of listing.Entries ?? []) names.push(entry.FullPath.slice(entry.FullPath.lastIndexOf('/') + 1))
    if (!listing.ShouldDisplayLoadMore || listing.LastFileName === undefined) return names
    lastFileName = listing.LastFileName
  }
}

if (realFilerUrl !== undefined) {
  describeProviderContract('SeaweedFS (real filer)', {
    capabilities: { symlinks: false, hardLinks: false, sparse: false },
    caseTimeoutMs: 120_000,
    async create() {
      const rootPath = `/aegis-node-contract/${randomUUID()}`
      const provider = () => new SeaweedFsProvider({ filerUrl: realFilerUrl, rootPath, logger })
      const filerPath = (names: readonly string[]) => [rootPath, ...names].join('/')
      return {
        provider: provider(),
        inspect: {
          readFile: (names) => readFromFiler(filerPath(names)),
          list: (names) => listFiler(filerPath(names)),
          writeFile: (names, data) => putToFiler(realFilerUrl, filerPath(names), data)
        },
        reopen: async () => provider(),
        cleanup: async () => {
          await fetch(`${filerUrlOf(rootPath)}?recursive=true`, { method: 'DELETE' })
        }
      }
    }
  })
}
