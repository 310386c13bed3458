// Mesh peers in separate processes on loopback: identity-derived peer ids and the trust list.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../../src/mesh/identity.js'
import { makeTempDir } from '../helpers/node.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const peerScript = path.join(here, 'mesh-peer.mjs')
const children: ChildProcess[] = []

/** Runs mesh-peer.mjs and resolves with its first output line. */
function runPeer(args: string[]): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, [peerScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let output = ''
    let errors = ''
    const timer = setTimeout(() => reject(new Error(`mesh peer ${args[0]} printed nothing within 20 s: ${errors}`)), 20_000)
    child.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()))
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const newline = output.indexOf('\n')
      if (newline >= 0) {
        clearTimeout(timer)
        resolve({ child, line: JSON.parse(output.slice(0, newline)) as Record<string, unknown> })
      }
    })
    child.once('exit', (code) => {
      if (output.length === 0) reject(new Error(`mesh peer ${args[0]} exited with ${code}: ${errors}`))
    })
  })
}

describe('mesh peers', () => {
  const trustedDir = makeTempDir('aegis-mesh-a-')
  const serverDir = makeTempDir('aegis-mesh-b-')
  const strangerDir = makeTempDir('aegis-mesh-c-')
  let trustedPeerId: string
  let server: { peerId: string; addresses: string[] }

  beforeAll(async () => {
    if (!fs.existsSync(path.join(here, '../../dist/src/mesh/libp2p.js'))) throw new Error('dist is missing; run "npm run build" first (npm test does)')
    trustedPeerId = (await loadOrCreateIdentity(trustedDir)).peerId
    const started = await runPeer(['serve', serverDir, trustedPeerId])
    server = started.line as unknown as typeof server
  })

  afterAll(() => {
    for (const child of children) child.kill('SIGKILL')
  })

  it('peer id comes from the key', async () => {
    const identity = await loadOrCreateIdentity(serverDir)
    expect(server.peerId).toBe(identity.peerId)
    expect(server.addresses[0]).toContain(`/p2p/${identity.peerId}`)
  })

  it('trusted peer connects', async () => {
    const { line } = await runPeer(['dial', trustedDir, 'any', server.addresses[0]])
    expect(line.connected).toBe(true)
    expect(line.remotePeer).toBe(server.peerId)
  })

  it('untrusted peer is turned away', async () => {
    const { line } = await runPeer(['dial', strangerDir, 'any', server.addresses[0]])
    expect(line.connected).toBe(false)
  })
})
