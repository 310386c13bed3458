// An owner node makes a Cedar decision per request. On Node 20, tens of thousands of them in one
// process made V8 abort, until the node turned off inlining of WebAssembly calls. This test runs
// that many in a child process, which dies with SIGTRAP if the workaround is lost.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { makeTempDir } from '../helpers/node.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

it('survives many cedar decisions', () => {
  const policies = makeTempDir('aegis-policy-crash-')
  fs.writeFileSync(path.join(policies, 'range.cedar'), '@id("range")\npermit (principal, action, resource) when { principal.labels.contains("bench") && context.offset >= 0 };\n')
  // Offsets differ on every call, and the policy reads them, so every call reaches Cedar.
  const script = `
    import { pino } from 'pino'
    import { PolicyEngine } from ${JSON.stringify(path.join(root, 'dist', 'src', 'mesh', 'policy.js'))}
    const engine = new PolicyEngine(${JSON.stringify(policies)}, pino({ level: 'silent' }))
    engine.load()
    const volume = { id: 'shared', owner: 'b', accessMode: 'read-write', storageClass: 'persistent', labels: [] }
    let allowed = 0
    for (let i = 0; i < 40000; i++) {
      if (engine.authorize({ peerId: 'a', peerLabels: ['bench'], operation: 'read_at', volume, path: '/f', offset: i * 4096, length: 4096 }).allowed) allowed++
    }
    console.log(allowed)`
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 120_000 })
  expect(run.signal, run.stderr.slice(0, 2000)).toBeNull()
  expect(run.status, run.stderr.slice(0, 2000)).toBe(0)
  expect(run.stdout.trim()).toBe('40000')
}, 150_000)
