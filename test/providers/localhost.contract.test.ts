// The provider contract against LocalHost: each case gets a new directory under the system's
// temporary directory as its volume root.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { LocalHostProvider } from '../../src/providers/localhost/provider.js'
import { describeProviderContract, type BackendInspector, type ProviderFixture } from './contract.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })

/** Returns null for a path that names nothing, so that the suite can tell "absent" from "empty". */
async function unlessMissing<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

function directoryInspector(rootPath: string): BackendInspector {
  const hostPath = (names: readonly string[]) => path.join(rootPath, ...names)
  return {
    readFile: (names) => unlessMissing(() => fs.promises.readFile(hostPath(names))),
    list: (names) => unlessMissing(() => fs.promises.readdir(hostPath(names))),
    writeFile: async (names, data) => {
      await fs.promises.mkdir(hostPath(names.slice(0, -1)), { recursive: true })
      await fs.promises.writeFile(hostPath(names), data)
    }
  }
}

/** Returns a fixture whose providers keep descriptors for at most `maxOpenNodes` nodes, or the default number. */
function localHostFixture(maxOpenNodes?: number): ProviderFixture {
  return {
    capabilities: { symlinks: true, hardLinks: true, sparse: true },
    async create() {
      const rootPath = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'aegis-contract-'))
      const provider = () => new LocalHostProvider({ rootPath, logger, maxOpenNodes })
      return {
        provider: provider(),
        inspect: directoryInspector(rootPath),
        reopen: async () => provider(),
        cleanup: () => fs.promises.rm(rootPath, { recursive: true, force: true })
      }
    }
  }
}

describeProviderContract('LocalHost', localHostFixture())
// Evicting every descriptor but one makes each operation reopen its object from the root, one name
// at a time, which is the path a large volume takes once its descriptor cache is full.
describeProviderContract('LocalHost with one cached descriptor', localHostFixture(1))
