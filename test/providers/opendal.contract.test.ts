// The provider contract against OpenDAL, through two services that need no network: fs (a root in
// a temporary directory) and memory (one Operator per volume, shared across a restart, because the
// memory service keeps its data per Operator). Neither has links, and gigabyte-sized sparse files
// would be staged and uploaded whole, so those cases are skipped.
//
// OpenDAL trims white space at the ends of a path and the fs service lists "\" as "/", so the
// provider escapes such characters in keys (src/providers/opendal/keys.ts). The inspectors below
// escape names the same way to find what the provider stored.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Operator } from 'opendal'
import { pino } from 'pino'
import { decodeName, encodeName } from '../../src/providers/opendal/keys.js'
import { OpenDalProvider } from '../../src/providers/opendal/provider.js'
import { describeProviderContract, type ProviderFixture } from './contract.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })

async function orNull<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read
  } catch {
    return null
  }
}

const fsFixture: ProviderFixture = {
  capabilities: { symlinks: false, hardLinks: false, sparse: false },
  caseTimeoutMs: 60_000,
  async create() {
    const baseDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-fs-'))
    const root = join(baseDir, 'root')
    const stateDir = join(baseDir, 'state')
    await mkdir(root)
    const provider = () => new OpenDalProvider({ scheme: 'fs', options: { root }, stateDir, logger, hostRoot: root })
    const hostPath = (names: readonly string[]) => join(root, ...names.map(encodeName))
    return {
      provider: provider(),
      inspect: {
        readFile: (names) => orNull(readFile(hostPath(names))),
        list: async (names) => (await orNull(readdir(hostPath(names))))?.map(decodeName) ?? null,
        writeFile: async (names, data) => {
          await mkdir(join(root, ...names.slice(0, -1)), { recursive: true })
          await writeFile(join(root, ...names), data)
        }
      },
      reopen: async () => provider(),
      cleanup: () => rm(baseDir, { recursive: true, force: true })
    }
  }
}

const memoryFixture: ProviderFixture = {
  capabilities: { symlinks: false, hardLinks: false, sparse: false },
  caseTimeoutMs: 60_000,
  async create() {
    const stateDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-memory-'))
    const operator = new Operator('memory', {})
    const provider = () => new OpenDalProvider({ scheme: 'memory', options: {}, stateDir, logger, operator })
    const key = (names: readonly string[]) => names.map(encodeName).join('/')
    return {
      provider: provider(),
      inspect: {
        readFile: (names) => orNull(operator.read(key(names))),
        list: async (names) => {
          const dirKey = names.length === 0 ? '/' : `${key(names)}/`
          const entries = await orNull(operator.list(dirKey))
          if (entries === null) return null
          if (entries.length === 0 && names.length > 0 && (await orNull(operator.stat(dirKey))) === null) return null
          return entries
            .map((entry) => entry.path())
            .filter((path) => path !== dirKey)
            .map((path) => {
              const trimmed = path.endsWith('/') ? path.slice(0, -1) : path
              return decodeName(trimmed.slice(trimmed.lastIndexOf('/') + 1))
            })
        },
        writeFile: async (names, data) => {
          await operator.write(names.join('/'), data)
        }
      },
      reopen: async () => provider(),
      cleanup: () => rm(stateDir, { recursive: true, force: true })
    }
  }
}

describeProviderContract('OpenDAL fs', fsFixture)
describeProviderContract('OpenDAL memory', memoryFixture)
