// Runs s3rver, a fake S3 server, in a child process for tests: on 127.0.0.1 at a port it picks
// itself, over a new temporary directory, with one bucket made at startup. s3rver checks request
// signatures against its fixed key pair, which this module hands out.

import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { startChildServer } from './child-server.js'

/** The only key pair s3rver accepts. */
const S3RVER_KEY = 'S3RVER'
const DEFAULT_BUCKET = 'contract'

export interface S3rver {
  /** http://127.0.0.1:PORT, for path-style requests. */
  endpoint: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  /** Directory where s3rver keeps its buckets, removed by stop(). */
  directory: string
  /**
   * Returns OpenDAL s3 options for the prefix `root` of the bucket. They name the keys and the
   * region, and switch off credentials from the environment or ~/.aws and the metadata service.
   */
  operatorOptions(root: string): Record<string, string>
  stop(): Promise<void>
}

function s3rverBin(): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js')
}

/** Starts s3rver with an empty bucket named `bucket` and resolves once it responds. */
export async function startS3rver(bucket = DEFAULT_BUCKET): Promise<S3rver> {
  const directory = await mkdtemp(join(tmpdir(), 'aegis-s3rver-'))
  try {
    const server = await startChildServer({
      name: 's3rver',
      command: process.execPath,
      // Port 0: s3rver binds a free port and prints it. No vhost buckets, so that a request's host
      // is never taken for a bucket name.
      args: [s3rverBin(), '--directory', directory, '--address', '127.0.0.1', '--port', '0', '--silent', '--no-vhost-buckets', '--configure-bucket', bucket],
      // s3rver 3.7 predates OpenSSL 3, so it runs with OpenSSL's legacy provider enabled.
      // NODE_OPTIONS is replaced, not extended, so that no option of the test runner reaches s3rver.
      env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' },
      addressFrom: (output) => {
        const match = /S3rver listening on ([\d.]+):(\d+)/.exec(output)
        return match === null ? null : `http://${match[1]}:${match[2]}`
      }
    })
    return {
      endpoint: server.url,
      bucket,
      accessKeyId: S3RVER_KEY,
      secretAccessKey: S3RVER_KEY,
      directory,
      operatorOptions: (root) => ({
        bucket,
        endpoint: server.url,
        region: 'us-east-1',
        access_key_id: S3RVER_KEY,
        secret_access_key: S3RVER_KEY,
        root,
        disable_config_load: 'true',
        disable_ec2_metadata: 'true'
      }),
      stop: async () => {
        await server.stop()
        await rm(directory, { recursive: true, force: true })
      }
    }
  } catch (error) {
    await rm(directory, { recursive: true, force: true })
    throw error
  }
}
