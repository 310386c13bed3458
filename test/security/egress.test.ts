// OpenDAL follows HTTP redirects, so a storage server could send the node to a cloud metadata
// service. These tests run the node in a network namespace of their own, where 169.254.169.254
// is an address on the loopback device with a trap server behind it, and check that no request
// of the node reaches the trap. They need root for `ip netns`.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { run } from '../helpers/attack.js'
import { makeTempDir } from '../helpers/node.js'

const CLI = path.resolve('dist/src/cli/main.js')
const TRAP = '169.254.169.254'
const TRAP_PORT = 18080
const STORAGE_PORT = 18081

// The trap records every request; the storage server redirects every request to the trap.
const SERVERS = `
const http = require('node:http')
const trap = http.createServer((request, response) => {
  console.log(JSON.stringify({ trap: request.method + ' ' + request.url }))
  response.end(JSON.stringify({ AccessKeyId: 'ASIATRAPPED', SecretAccessKey: 'trapped' }))
})
const storage = http.createServer((request, response) => {
  request.resume()
  response.writeHead(307, { location: 'http://${TRAP}:${TRAP_PORT}/latest/meta-data/iam/security-credentials/node-role' }).end()
})
trap.listen(${TRAP_PORT}, '${TRAP}', () => storage.listen(${STORAGE_PORT}, '127.0.0.1', () => console.log('ready')))
`

interface Output {
  code: number | null
  text: string
}

function runInNetns(netns: string, command: string[], timeoutMs: number): Promise<Output> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, text })
    })
  })
}

describe('OpenDAL egress', () => {
  const netns = `aegis-e-${randomBytes(3).toString('hex')}`
  const base = makeTempDir('aegis-egress-')
  let servers: ReturnType<typeof spawn> | null = null
  let trapped = ''
  let setupError: Error | null = null

  beforeAll(async () => {
    try {
      await run('ip', ['netns', 'add', netns])
      await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up'])
      await run('ip', ['-n', netns, 'addr', 'add', `${TRAP}/32`, 'dev', 'lo'])
    } catch (error) {
      setupError = error as Error
      return
    }
    servers = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', SERVERS], { stdio: ['ignore', 'pipe', 'pipe'] })
    await new Promise<void>((resolve, reject) => {
      servers!.stdout!.on('data', (chunk: Buffer) => {
        trapped += chunk.toString()
        if (trapped.includes('ready')) resolve()
      })
      servers!.once('exit', (code) => reject(new Error(`the trap servers exited with code ${code}`)))
    })
  })

  afterAll(async () => {
    servers?.kill('SIGKILL')
    await run('ip', ['netns', 'del', netns]).catch(() => undefined)
  })

  it('trap records a direct request', async () => {
    expect(setupError).toBeNull()
    const before = trapped
    const probe = await runInNetns(netns, [process.execPath, '-e', `fetch('http://${TRAP}:${TRAP_PORT}/probe').then((r) => r.text()).then(console.log)`], 10_000)
    expect(probe.text).toContain('ASIATRAPPED')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(trapped.slice(before.length)).toContain('GET /probe')
  })

  it('redirect to metadata rejected', async () => {
    expect(setupError).toBeNull()
    const dataDir = path.join(base, 'node')
    const configPath = path.join(base, 'node.yaml')
    fs.writeFileSync(
      configPath,
      `node: {name: egress, data_dir: ${dataDir}}\nnfs: {bind: 127.0.0.1, port: 0}\nvolumes:\n` +
        `  - name: bucket\n    type: opendal\n    provider: s3\n    config:\n      endpoint: "http://127.0.0.1:${STORAGE_PORT}"\n` +
        `      bucket: data\n      access_key_id: AKIDEXAMPLE\n      secret_access_key: example-secret\n` +
        `    mount_path: /workspace/bucket\n    access_mode: read-write\n`
    )
    const before = trapped
    const node = await runInNetns(netns, [process.execPath, CLI, 'serve', '--config', configPath], 30_000)

    expect(node.code, node.text).not.toBe(0)
    expect(node.text).toContain('OpenDAL request to a cloud metadata service rejected')
    expect(node.text).toContain('volume bucket')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(trapped.slice(before.length)).not.toContain('trap')
    expect(node.text).not.toContain('ASIATRAPPED')
  }, 40_000)
})
