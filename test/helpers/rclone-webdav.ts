// Runs `rclone serve webdav` in a child process for tests: on 127.0.0.1 at a port it picks itself,
// serving a new temporary directory, behind basic authentication with a random password. rclone
// stores what it is sent as plain files and directories there, so a test can read them directly.

import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startChildServer } from './child-server.js'

const USERNAME = 'contract'

export interface RcloneWebdav {
  /** http://127.0.0.1:PORT/, the root of the served directory. */
  endpoint: string
  /** The directory rclone serves. */
  dir: string
  username: string
  password: string
  /** Stops rclone and removes the served directory. */
  stop(): Promise<void>
}

/** Starts rclone serving an empty directory and resolves once it responds. */
export async function startRcloneWebdav(): Promise<RcloneWebdav> {
  const baseDir = await mkdtemp(join(tmpdir(), 'aegis-rclone-'))
  const dir = join(baseDir, 'served')
  await mkdir(dir)
  const password = randomBytes(12).toString('hex')
  try {
    const server = await startChildServer({
      name: 'rclone serve webdav',
      command: 'rclone',
      // --config /dev/null: no remotes or settings from the user's rclone.conf. Port 0: rclone
      // binds a free port and logs the address.
      args: ['serve', 'webdav', '--config', '/dev/null', '--addr', '127.0.0.1:0', '--user', USERNAME, '--pass', password, dir],
      // rclone also reads settings from RCLONE_* variables, so the caller's are left out.
      env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('RCLONE_'))),
      addressFrom: (output) => /WebDav Server started on (http:\/\/[\d.]+:\d+\/)/.exec(output)?.[1] ?? null
    })
    return {
      endpoint: server.url,
      dir,
      username: USERNAME,
      password,
      stop: async () => {
        await server.stop()
        await rm(baseDir, { recursive: true, force: true })
      }
    }
  } catch (error) {
    await rm(baseDir, { recursive: true, force: true })
    throw error
  }
}
