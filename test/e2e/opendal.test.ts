// OpenDAL volumes served over NFS end to end, one node process (`aegis-node serve`) with four
// of them: fs (a host directory), memory, s3 against s3rver and webdav against rclone. The libnfs
// tools and the libnfs test client are the agents. Credentials come from the fake OpenBao server
// and from the environment, and the test checks that their values reach neither the log nor the
// audit trail.

import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { Operator } from 'opendal'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, startNodeProcess, type NodeProcess } from '../helpers/mesh-cluster.js'
import { nfsCat, nfsCp, nfsLs, runNfsScript } from '../helpers/nfs-client.js'
import { Nfs3Client, StableHow } from '../helpers/nfs3.js'
import { makeTempDir } from '../helpers/node.js'
import { startRcloneWebdav, type RcloneWebdav } from '../helpers/rclone-webdav.js'
import { startS3rver, type S3rver } from '../helpers/s3rver.js'
import { VaultFake } from '../helpers/vault-fake.js'

const vaultToken = `root-${randomBytes(8).toString('hex')}`
let vault: VaultFake
let s3: S3rver
let dav: RcloneWebdav
let fsRoot: string
let node: NodeProcess

function opendalVolume(name: string, provider: string, config: Record<string, string>): string {
  const lines = Object.entries(config).map(([key, value]) => `      ${key}: ${JSON.stringify(value)}\n`)
  return `  - name: ${name}\n    type: opendal\n    provider: ${provider}\n    config:\n${lines.join('')}    mount_path: /workspace/${name}\n    access_mode: read-write\n    size_limit: 256Mi\n`
}

/**
 * Runs the CLI and collects its output. Asynchronous, because the fake OpenBao server responds
 * from this process's event loop.
 */
function runCli(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })
    })
  })
}

function secretsYaml(): string {
  return `secrets:\n  vault:\n    address: ${vault.address}\n    token: env:TEST_VAULT_TOKEN\n`
}

beforeAll(async () => {
  ;[vault, s3, dav] = await Promise.all([VaultFake.start({ tokens: [vaultToken] }), startS3rver(), startRcloneWebdav()])
  vault.putSecret('dav/agent', { password: dav.password })
  fsRoot = makeTempDir('aegis-opendal-fs-root-')
  const dataDir = makeTempDir()
  node = await startNodeProcess({
    name: 'opendal-e2e',
    dataDir,
    meshPort: 0,
    env: { TEST_VAULT_TOKEN: vaultToken, S3_KEY_ID: s3.accessKeyId, S3_SECRET: s3.secretAccessKey },
    yaml:
      secretsYaml() +
      'volumes:\n' +
      opendalVolume('objects', 'fs', { root: fsRoot }) +
      opendalVolume('scratch', 'memory', {}) +
      opendalVolume('bucket', 's3', { bucket: s3.bucket, endpoint: s3.endpoint, root: '/e2e/', access_key_id: 'env:S3_KEY_ID', secret_access_key: 'env:S3_SECRET' }) +
      opendalVolume('dav', 'webdav', { endpoint: dav.endpoint, username: dav.username, password: 'secret:dav/agent/password' })
  })
}, 60_000)

afterAll(async () => {
  await node?.stop()
  await Promise.all([vault?.close(), s3?.stop(), dav?.stop()])
})

describe.each(['objects', 'scratch', 'bucket', 'dav'])('opendal volume %s over NFS', (volume) => {
  it('copies byte-exact both ways', async () => {
    const local = path.join(makeTempDir(), 'data.bin')
    const content = randomBytes(8 * 1024 * 1024 + 17)
    fs.writeFileSync(local, content)

    const upload = await nfsCp(local, node.url(volume, '/data.bin'))
    expect(upload.code, upload.stderr).toBe(0)
    const download = await nfsCat(node.url(volume, '/data.bin'))
    expect(download.code, download.stderr).toBe(0)
    expect(download.stdout.equals(content)).toBe(true)
    expect((await nfsLs(node.url(volume))).stdout.toString()).toContain('data.bin')
  }, 60_000)

  it('writes at offsets, renames, keeps full directories', async () => {
    const odd = '/a?b #1 é&%.txt'
    const results = await runNfsScript(node.url(volume), [
      ['mkdir', '/dir', '755'],
      ['create', odd, '644'],
      ['write', odd, '0', Buffer.from('hello').toString('hex')],
      ['write', odd, '10', Buffer.from('world').toString('hex')],
      ['fsync', odd],
      ['rename', odd, '/dir/moved.txt'],
      ['read', '/dir/moved.txt', '0', '64'],
      ['rmdir', '/dir'],
      ['unlink', '/dir/moved.txt'],
      ['rmdir', '/dir'],
      ['stat', '/dir']
    ])
    expect(results.slice(0, 7).map((result) => result.ok), JSON.stringify(results)).toEqual([true, true, true, true, true, true, true])
    expect(results[6]).toMatchObject({ hex: Buffer.concat([Buffer.from('hello'), Buffer.alloc(5), Buffer.from('world')]).toString('hex') })
    expect(results[7]).toMatchObject({ ok: false, errno: 39 })
    expect(results.slice(8, 10).map((result) => result.ok)).toEqual([true, true])
    expect(results[10]).toMatchObject({ ok: false, errno: 2 })
  }, 60_000)
})

describe('opendal backends hold what NFS wrote', () => {
  it('stores the fs volume as plain files in its root', () => {
    expect(fs.statSync(path.join(fsRoot, 'data.bin')).size).toBe(8 * 1024 * 1024 + 17)
  })

  it('stores the webdav volume in the directory rclone serves', () => {
    expect(fs.statSync(path.join(dav.dir, 'data.bin')).size).toBe(8 * 1024 * 1024 + 17)
  })
})

describe('opendal volumes changed around the node', () => {
  async function listsWithin(volume: string, name: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if ((await nfsLs(node.url(volume))).stdout.toString().includes(name)) return true
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  it('list a file added on the host', async () => {
    expect((await nfsLs(node.url('objects'))).stdout.toString()).not.toContain('from-host.txt')
    fs.writeFileSync(path.join(fsRoot, 'from-host.txt'), 'made around the node')

    expect(await listsWithin('objects', 'from-host.txt', 5_000)).toBe(true)
  })

  it('list an object added to the bucket', async () => {
    expect((await nfsLs(node.url('bucket'))).stdout.toString()).not.toContain('from-bucket.txt')
    const other = new Operator('s3', s3.operatorOptions('/e2e/'))
    await other.write('from-bucket.txt', Buffer.from('made around the node'))

    expect(await listsWithin('bucket', 'from-bucket.txt', 5_000)).toBe(true)
  })
})

describe('credentials of opendal volumes', () => {
  it('never reach the log or the audit trail', async () => {
    // A failing request and a listing make the node log and audit more than the happy path.
    await runNfsScript(node.url('dav'), [['stat', '/missing'], ['ls', '/']])
    await new Promise((resolve) => setTimeout(resolve, 200))
    const log = node.log.join('\n')
    expect(log).toContain('secret reference resolved')
    expect(log).toContain('secret:dav/agent/password')
    const audit = fs.readFileSync(node.auditPath, 'utf8')
    expect(audit).toContain('"volume":"dav"')
    for (const value of [dav.password, vaultToken]) {
      expect(log).not.toContain(value)
      expect(audit).not.toContain(value)
    }
  })

  it('are hidden when the backend echoes one in an error', async () => {
    // The bucket name is not a credential, but taking it from OpenBao makes it a resolved value
    // that OpenDAL quotes when the bucket is missing.
    const dataDir = makeTempDir()
    const hiddenBucket = `hidden-${randomBytes(6).toString('hex')}`
    vault.putSecret('s3/hidden', { bucket: hiddenBucket })
    const configPath = path.join(dataDir, 'node.yaml')
    fs.writeFileSync(
      configPath,
      `node: {name: hidden, data_dir: ${dataDir}}\nnfs: {bind: 127.0.0.1, port: 0}\n${secretsYaml()}volumes:\n` +
        opendalVolume('hidden', 's3', { bucket: 'secret:s3/hidden/bucket', endpoint: s3.endpoint, access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey })
    )
    const run = await runCli(['serve', '--config', configPath, '--log-level', 'debug'], { TEST_VAULT_TOKEN: vaultToken })
    expect(run.status, run.stdout + run.stderr).not.toBe(0)
    expect(run.stderr, run.stderr).toContain('volume hidden')
    expect(run.stderr).toContain('[secret]')
    expect(run.stdout + run.stderr).not.toContain(hiddenBucket)
  })
})

describe('staged data of an opendal volume', () => {
  it('survives a crash and is uploaded at the next start', async () => {
    const dataDir = makeTempDir()
    const root = makeTempDir('aegis-opendal-crash-root-')
    const yaml = 'volumes:\n' + opendalVolume('crashy', 'fs', { root })
    const content = randomBytes(3 * 1024 * 1024 + 11)

    const first = await startNodeProcess({ name: 'crashy', dataDir, meshPort: 0, yaml })
    const nfs = await Nfs3Client.connect(first.nfsPort)
    try {
      const volumeRoot = await nfs.mount('/crashy')
      const file = (await nfs.create(volumeRoot, 'unsaved.bin', { mode: 'guarded' })).handle!
      for (let offset = 0; offset < content.length; offset += 1024 * 1024) {
        const result = await nfs.write(file, offset, content.subarray(offset, offset + 1024 * 1024), StableHow.UNSTABLE)
        expect(result.committed).toBe(StableHow.UNSTABLE)
      }
    } finally {
      nfs.close()
    }
    // Killed before the idle upload (5 s): the data is only in the staging file.
    expect(await first.stop('SIGKILL')).toBeNull()
    expect(fs.statSync(path.join(root, 'unsaved.bin')).size).toBe(0)

    const second = await startNodeProcess({ name: 'crashy', dataDir, meshPort: 0, yaml })
    try {
      expect(second.log.join('\n')).toContain('staged data left by an earlier run found; uploading it')
      expect(fs.readFileSync(path.join(root, 'unsaved.bin')).equals(content)).toBe(true)
      const download = await nfsCat(second.url('crashy', '/unsaved.bin'))
      expect(download.stdout.equals(content)).toBe(true)
    } finally {
      await second.stop()
    }
  }, 60_000)
})

describe('opendal volumes that cannot start', () => {
  async function serve(yaml: string, env: Record<string, string> = {}): Promise<{ status: number | null; output: string }> {
    const dataDir = makeTempDir()
    const configPath = path.join(dataDir, 'node.yaml')
    fs.writeFileSync(configPath, `node: {name: refused, data_dir: ${dataDir}}\nnfs: {bind: 127.0.0.1, port: 0}\n${yaml}`)
    const run = await runCli(['serve', '--config', configPath], { TEST_VAULT_TOKEN: vaultToken, ...env })
    return { status: run.status, output: run.stdout + run.stderr }
  }

  it('name the reference that does not resolve', async () => {
    const result = await serve(secretsYaml() + 'volumes:\n' + opendalVolume('dav2', 'webdav', { endpoint: dav.endpoint, username: dav.username, password: 'secret:dav/nobody/password' }))
    expect(result.status).not.toBe(0)
    expect(result.output).toContain('volume dav2')
    expect(result.output).toContain('secret:dav/nobody/password')
  })

  it('refuse an fs root reference into the data directory', async () => {
    const dataDir = makeTempDir()
    const configPath = path.join(dataDir, 'node.yaml')
    const yaml = 'volumes:\n' + opendalVolume('leaky', 'fs', { root: 'env:FS_ROOT' })
    fs.writeFileSync(configPath, `node: {name: refused, data_dir: ${dataDir}}\nnfs: {bind: 127.0.0.1, port: 0}\n${yaml}`)
    const run = await runCli(['serve', '--config', configPath], { FS_ROOT: path.join(dataDir, '.') })
    const output = run.stdout + run.stderr
    expect(run.status).not.toBe(0)
    expect(output).toContain('volume leaky')
    expect(output).toContain('env:FS_ROOT (resolved) overlaps the data directory')
    expect(fs.existsSync(path.join(dataDir, 'node.lock'))).toBe(false)
  })

  it('refuse a root through a link or on a file', async () => {
    const dataDir = makeTempDir()
    const outside = makeTempDir()
    fs.symlinkSync(dataDir, path.join(outside, 'link'))
    fs.writeFileSync(path.join(outside, 'file.txt'), 'not a directory\n')
    const cases: Array<[string, string]> = [
      [path.join(outside, 'link', 'new-root'), 'overlaps the data directory'],
      [path.join(outside, 'file.txt'), 'cannot be used as the root directory']
    ]
    for (const [root, expected] of cases) {
      const configPath = path.join(outside, 'node.yaml')
      fs.writeFileSync(configPath, `node: {name: refused, data_dir: ${dataDir}}\nnfs: {bind: 127.0.0.1, port: 0}\nvolumes:\n` + opendalVolume('rooted', 'fs', { root }))
      const run = await runCli(['serve', '--config', configPath], {})
      const output = run.stdout + run.stderr
      expect(run.status, root).toBe(2)
      expect(output, root).toContain('volume rooted')
      expect(output, root).toContain(expected)
    }
    expect(fs.existsSync(path.join(dataDir, 'new-root'))).toBe(false)
  })

  it('ignore ambient credentials by default', async () => {
    const ambient = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey }
    const guarded = await serve('volumes:\n' + opendalVolume('ambient', 's3', { bucket: s3.bucket, endpoint: s3.endpoint, root: '/ambient/' }), ambient)
    expect(guarded.status).not.toBe(0)
    expect(guarded.output).toContain('volume ambient')

    const optedIn = await startNodeProcess({
      name: 'ambient',
      dataDir: makeTempDir(),
      meshPort: 0,
      env: ambient,
      // At the top of the bucket, where creating the root would be a CreateBucket request.
      yaml: 'volumes:\n' + opendalVolume('ambient', 's3', { bucket: s3.bucket, endpoint: s3.endpoint, disable_config_load: 'false' })
    })
    try {
      const results = await runNfsScript(optedIn.url('ambient'), [['create', '/f', '644'], ['stat', '/f']])
      expect(results.map((result) => result.ok)).toEqual([true, true])
    } finally {
      await optedIn.stop()
    }
  }, 60_000)
})

describe('opendal volume whose backend goes away', () => {
  it('logs the failure and answers with IO', async () => {
    const stoppedDav = await startRcloneWebdav()
    const isolated = await startNodeProcess({
      name: 'backend-gone',
      dataDir: makeTempDir(),
      meshPort: 0,
      yaml: 'volumes:\n' + opendalVolume('gone', 'webdav', { endpoint: stoppedDav.endpoint, username: stoppedDav.username, password: stoppedDav.password })
    })
    try {
      await stoppedDav.stop()
      const results = await runNfsScript(isolated.url('gone'), [['stat', '/missing-now.txt']])
      expect(results[0]).toMatchObject({ ok: false, errno: 5 })
      const logged = await isolated.waitForLog((entry) => entry.msg === 'request failed in the storage backend')
      expect(logged).toMatchObject({ volume: 'gone', status: 'IO' })
      expect(String(logged.reason)).toContain(new URL(stoppedDav.endpoint).port)
    } finally {
      await isolated.stop()
    }
  }, 60_000)
})
