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
        list: async (names) => filer.listDirectory(filerPath(names)) ?? null
      },
      reopen: async () => provider(),
      cleanup: async () => {}
    }
  }
}

describeProviderContract('SeaweedFS', seaweedFsFixture)
