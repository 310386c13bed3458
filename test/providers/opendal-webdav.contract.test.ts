// The provider contract against OpenDAL's webdav service and `rclone serve webdav`, started for
// this file with basic authentication. Each case gets its own directory on the one server. WebDAV
// has no links here, and gigabyte-sized sparse files would be staged and uploaded whole, so those
// cases are skipped, and so is one case that rclone's MOVE cannot pass (serverLimitations below).
//
// rclone stores what it receives as plain files in the directory it serves, so the inspector reads
// that directory, escaping names as the provider does (src/providers/opendal/keys.ts).

import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Operator } from 'opendal'
import { pino } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { decodeName, encodeName } from '../../src/providers/opendal/keys.js'
import { OpenDalProvider } from '../../src/providers/opendal/provider.js'
import { startRcloneWebdav, type RcloneWebdav } from '../helpers/rclone-webdav.js'
import { describeProviderContract, type ProviderFixture } from './contract.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
let server: RcloneWebdav

beforeAll(async () => {
  server = await startRcloneWebdav()
})

afterAll(async () => {
  await server?.stop()
})

async function orNull<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read
  } catch {
    return null
  }
}

const webdavFixture: ProviderFixture = {
  capabilities: { symlinks: false, hardLinks: false, sparse: false },
  caseTimeoutMs: 60_000,
  serverLimitations: {
    // rclone serves WebDAV with golang.org/x/net/webdav, whose MOVE deletes an existing target and
    // then renames the source, as RFC 4918, section 9.9.3 describes. A LOOKUP in between finds no
    // target, and OpenDAL's webdav rename is that MOVE.
    'rename over a file is atomic for readers': 'rclone (golang.org/x/net/webdav) runs MOVE over an existing file as a DELETE of the target, then a rename, as RFC 4918 allows, so a concurrent LOOKUP can find no target; webdav volumes have this limit on any such server'
  },
  async create() {
    const volumeName = randomUUID()
    const stateDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-webdav-'))
    const options = {
      endpoint: server.endpoint,
      username: server.username,
      password: server.password,
      root: `/contract/${volumeName}/`
    }
    const provider = () => new OpenDalProvider({ scheme: 'webdav', options, stateDir, logger })
    const volumeDir = join(server.dir, 'contract', volumeName)
    const hostPath = (names: readonly string[]) => join(volumeDir, ...names.map(encodeName))
    return {
      provider: provider(),
      inspect: {
        readFile: (names) => orNull(readFile(hostPath(names))),
        list: async (names) => (await orNull(readdir(hostPath(names))))?.map(decodeName) ?? null,
        // Written through WebDAV by an Operator of its own, because rclone keeps listings in its
        // directory cache and would not see a file written on disk behind it.
        writeFile: async (names, data) => {
          await new Operator('webdav', options).write(names.join('/'), data)
        }
      },
      reopen: async () => provider(),
      cleanup: async () => {
        // Removed on disk, behind rclone: no later case uses this directory.
        await rm(volumeDir, { recursive: true, force: true })
        await rm(stateDir, { recursive: true, force: true })
      }
    }
  }
}

describeProviderContract('OpenDAL webdav', webdavFixture)
