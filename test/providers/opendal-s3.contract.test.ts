// The provider contract against OpenDAL's s3 service and s3rver, a fake S3 server started for this
// file. Each case gets its own prefix in one bucket. S3 has no links, and gigabyte-sized sparse
// files would be staged and uploaded whole, so those cases are skipped, and so are three cases that
// s3rver cannot pass although S3 would (serverLimitations below).
//
// The inspector reads the bucket through a second Operator of its own, without the provider. Keys
// are escaped as the provider escapes them (src/providers/opendal/keys.ts).

import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Operator } from 'opendal'
import { pino } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { decodeName, encodeName } from '../../src/providers/opendal/keys.js'
import { OpenDalProvider } from '../../src/providers/opendal/provider.js'
import { startS3rver, type S3rver } from '../helpers/s3rver.js'
import { describeProviderContract, type ProviderFixture } from './contract.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
let server: S3rver

beforeAll(async () => {
  server = await startS3rver()
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

const s3Fixture: ProviderFixture = {
  capabilities: { symlinks: false, hardLinks: false, sparse: false },
  caseTimeoutMs: 60_000,
  // Limits of s3rver that S3 itself does not have (see node_modules/s3rver/lib/stores/filesystem.js).
  serverLimitations: {
    // s3rver keeps an object in a file named after the key's last segment plus "._S3rver_object",
    // with ".md5" and ".metadata.json" files beside it. S3 takes keys of up to 1,024 bytes.
    'names of 255 bytes': 's3rver stores a 255-byte key segment in a file whose name passes the 255-byte limit of the local file system (HTTP 500, ENAMETOOLONG)',
    // s3rver truncates the object's file and rewrites it in place on PUT. S3 replaces an object
    // whole, so a GET returns either the old or the new one.
    'rename over a file is atomic for readers': 's3rver rewrites an object in place on PUT, so a concurrent GET can read it half written',
    // Each CREATE checks that no directory has the new name, and in OpenDAL a stat of a
    // directory key is a LIST of that prefix. s3rver serves a LIST by stating every file in the
    // prefix's parent directory, so each CREATE costs time in proportion to the directory's size
    // and 5,000 of them take more than 15 minutes. S3 answers a LIST from its index.
    '5,000 entries paged, each exactly once': 's3rver lists a prefix by stating every file in its directory, so 5,000 CREATEs take time quadratic in the entry count'
  },
  async create() {
    const root = `/contract/${randomUUID()}/`
    const stateDir = await mkdtemp(join(tmpdir(), 'aegis-opendal-s3-'))
    const provider = () => new OpenDalProvider({ scheme: 's3', options: server.operatorOptions(root), stateDir, logger })
    const bucket = new Operator('s3', server.operatorOptions(root))
    const key = (names: readonly string[]) => names.map(encodeName).join('/')
    return {
      provider: provider(),
      inspect: {
        readFile: (names) => orNull(bucket.read(key(names))),
        list: async (names) => {
          const dirKey = names.length === 0 ? '/' : `${key(names)}/`
          const entries = await orNull(bucket.list(dirKey))
          if (entries === null) return null
          // S3 lists a missing prefix as empty. A directory exists as its marker object or as the
          // prefix of other keys.
          if (entries.length === 0 && names.length > 0 && (await orNull(bucket.stat(dirKey))) === null) return null
          return entries
            .map((entry) => entry.path())
            .filter((path) => path !== dirKey)
            .map((path) => {
              const trimmed = path.endsWith('/') ? path.slice(0, -1) : path
              return decodeName(trimmed.slice(trimmed.lastIndexOf('/') + 1))
            })
        },
        writeFile: async (names, data) => {
          await bucket.write(names.join('/'), data)
        }
      },
      reopen: async () => provider(),
      cleanup: async () => {
        await orNull(bucket.removeAll('/'))
        await rm(stateDir, { recursive: true, force: true })
      }
    }
  }
}

describeProviderContract('OpenDAL s3', s3Fixture)
