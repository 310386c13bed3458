// The mesh commands of the compiled CLI as an operator runs them: `id`, `policy check`, and
// `serve` refusing a seal volume without a mesh section. None of these binds a port.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'

import { makeTempDir } from '../helpers/node.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const cli = path.join(root, 'dist/src/cli/main.js')

/** uid and gid of "nobody", used to run the CLI without the rights of the file owner. */
const NOBODY_ID = 65534

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

function collect(result: SpawnSyncReturns<string>): Result {
  if (result.error) throw result.error
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

function run(args: string[], cwd = root): Result {
  return collect(spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 20_000 }))
}

/**
 * Runs the CLI as a user without the permissions that the test took away from a file. Root reads
 * every file, so as root the CLI runs as nobody through setpriv (util-linux). The directories on
 * the way must then be open to other users.
 */
function runWithoutRoot(args: string[], cwd = root): Result {
  if (process.getuid?.() !== 0) return run(args, cwd)
  const setpriv = ['--reuid', String(NOBODY_ID), '--regid', String(NOBODY_ID), '--clear-groups', process.execPath, cli, ...args]
  return collect(spawnSync('setpriv', setpriv, { cwd, encoding: 'utf8', timeout: 20_000 }))
}

/** Makes a temporary directory that other users may enter, for runWithoutRoot. */
function makeOpenTempDir(): string {
  const dir = makeTempDir('aegis-mesh-cli-')
  fs.chmodSync(dir, 0o755)
  return dir
}

const localVolume = `volumes:
  - name: data
    type: local
    mount_path: /workspace/data
    access_mode: read-write
`

/** Writes node.yaml into `dir`, with data_dir ./state and `extra` appended. */
function writeConfig(dir: string, extra: string): string {
  const file = path.join(dir, 'node.yaml')
  fs.writeFileSync(file, `node:\n  name: cli-test\n  data_dir: ./state\nnfs:\n  bind: 127.0.0.1\n  port: 0\n${localVolume}${extra}`)
  return file
}

function writePolicies(dir: string, files: Record<string, string>): string {
  fs.mkdirSync(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  return dir
}

/** Returns the peer id printed on the "peer id:" line, or null when there is none. */
function printedPeerId(stdout: string): string | null {
  return /^peer id: (12D3KooW[1-9A-HJ-NP-Za-km-z]+)$/m.exec(stdout)?.[1] ?? null
}

beforeAll(() => {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing; run "npm run build" first (npm test does)`)
})

describe('aegis-node id', () => {
  it('creates the identity once', () => {
    const dataDir = path.join(makeTempDir('aegis-mesh-cli-'), 'data')
    const keyPath = path.join(dataDir, 'node.key')

    const first = run(['id', '--data-dir', dataDir])
    expect(first.stderr).toBe('')
    expect(first.status).toBe(0)
    const peerId = printedPeerId(first.stdout)
    expect(peerId).not.toBeNull()
    expect(first.stdout.split('\n')).toContain(`key file: ${keyPath}`)
    expect(first.stdout).toContain('mesh: not configured')
    expect(first.stdout).not.toContain('listen:')

    expect(fs.statSync(keyPath).mode & 0o777).toBe(0o600)
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700)
    const key = privateKeyFromProtobuf(fs.readFileSync(keyPath))
    expect(peerIdFromPrivateKey(key).toString()).toBe(peerId)

    const keyBytes = fs.readFileSync(keyPath)
    const second = run(['id', '--data-dir', dataDir])
    expect(second.status).toBe(0)
    expect(printedPeerId(second.stdout)).toBe(peerId)
    expect(fs.readFileSync(keyPath).equals(keyBytes)).toBe(true)
  })

  it('prints one line per listen address', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(dir, 'mesh:\n  listen: [/ip4/127.0.0.1/tcp/4001, /ip6/::1/tcp/4002]\n')

    // The working directory differs from the config directory, so ./state must resolve against the latter.
    const result = run(['id', '--config', config])
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const peerId = printedPeerId(result.stdout)
    expect(peerId).not.toBeNull()
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines).toEqual([
      `peer id: ${peerId}`,
      `key file: ${path.join(dir, 'state', 'node.key')}`,
      `listen: /ip4/127.0.0.1/tcp/4001/p2p/${peerId}`,
      `listen: /ip6/::1/tcp/4002/p2p/${peerId}`
    ])
  })

  it('prints the default listen address', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(dir, 'mesh: {}\n')
    const result = run(['id', '--config', config])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain(`listen: /ip4/127.0.0.1/tcp/4001/p2p/${printedPeerId(result.stdout)}\n`)
  })

  it('--data-dir overrides the config', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(dir, 'mesh: {}\n')
    const dataDir = path.join(dir, 'elsewhere')
    const result = run(['id', '--config', config, '--data-dir', dataDir])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain(`key file: ${path.join(dataDir, 'node.key')}\n`)
    expect(fs.existsSync(path.join(dir, 'state'))).toBe(false)
  })

  it('rejects a key others can read', () => {
    const dataDir = makeTempDir('aegis-mesh-cli-')
    expect(run(['id', '--data-dir', dataDir]).status).toBe(0)
    const keyPath = path.join(dataDir, 'node.key')
    const keyBytes = fs.readFileSync(keyPath)
    fs.chmodSync(keyPath, 0o644)

    const result = run(['id', '--data-dir', dataDir])
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(`${keyPath} has mode 644`)
    expect(result.stderr).toContain(`chmod 600 ${keyPath}`)
    expect(fs.readFileSync(keyPath).equals(keyBytes)).toBe(true)
  })

  it('rejects a key its group can read', () => {
    const dataDir = makeTempDir('aegis-mesh-cli-')
    expect(run(['id', '--data-dir', dataDir]).status).toBe(0)
    fs.chmodSync(path.join(dataDir, 'node.key'), 0o640)
    const result = run(['id', '--data-dir', dataDir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('has mode 640')
  })

  it('rejects a corrupt key', () => {
    const dataDir = makeTempDir('aegis-mesh-cli-')
    const keyPath = path.join(dataDir, 'node.key')
    fs.writeFileSync(keyPath, 'not a key at all', { mode: 0o600 })

    const result = run(['id', '--data-dir', dataDir])
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(`${keyPath} is not a private key`)
    expect(result.stderr).toContain('restore it from a backup')
    expect(fs.readFileSync(keyPath, 'utf8')).toBe('not a key at all')
  })

  it('rejects a secp256k1 key', async () => {
    const dataDir = makeTempDir('aegis-mesh-cli-')
    fs.writeFileSync(path.join(dataDir, 'node.key'), privateKeyToProtobuf(await generateKeyPair('secp256k1')), { mode: 0o600 })
    const result = run(['id', '--data-dir', dataDir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('contains a secp256k1 key')
    expect(result.stderr).toContain('needs an Ed25519 key')
  })

  // A key the user cannot read is intact: the message must point at the permissions and must not
  // suggest deleting the file, which would give the node a new identity.
  it('unreadable key is a permission problem', () => {
    const dataDir = makeOpenTempDir()
    expect(run(['id', '--data-dir', dataDir]).status).toBe(0)
    const keyPath = path.join(dataDir, 'node.key')
    fs.chmodSync(keyPath, 0o200)

    const result = runWithoutRoot(['id', '--data-dir', dataDir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(keyPath)
    expect(result.stderr).toContain('permission denied')
    expect(result.stderr).not.toContain('is not a private key')
    expect(result.stderr).not.toContain('delete it')
  })

  it('uncreatable data dir names the directory', () => {
    const parent = makeOpenTempDir()
    fs.chmodSync(parent, 0o555)
    const dataDir = path.join(parent, 'data')

    const result = runWithoutRoot(['id', '--data-dir', dataDir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(dataDir)
    expect(result.stderr).not.toContain('ports below 1024')
    expect(result.stderr).not.toContain('--nfs-port')
  })

  it('rejects a bad mesh config', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(dir, 'mesh:\n  listen: [/ip4/127.0.0.1/udp/4001]\n')
    const result = run(['id', '--config', config])
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(`${config}: mesh.listen[0]: "/ip4/127.0.0.1/udp/4001" must be an address and TCP port`)
    expect(fs.existsSync(path.join(dir, 'state'))).toBe(false)
  })
})

const READ_POLICY = `@id("trusted-read")
permit(principal, action in Aegis::Action::"Read", resource) when { principal.labels.contains("trusted") };
`
const WRITE_POLICIES = `permit(principal, action == Aegis::Action::"write_at", resource) when { resource.accessMode == "read-write" };

@id("no-secrets")
forbid(principal, action in Aegis::Action::"Write", resource) when { context.path like "/secrets/*" };
`

describe('aegis-node policy check', () => {
  it('counts a valid set', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'read.cedar': READ_POLICY, 'write.cedar': WRITE_POLICIES, 'notes.txt': 'not a policy (' })
    const result = run(['policy', 'check', dir])
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`${dir}: 3 policies valid against the aegis-node schema\n`)
  })

  it('counts one policy', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'read.cedar': READ_POLICY })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`${dir}: 1 policy valid against the aegis-node schema\n`)
  })

  it('uses policy_dir from the config', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    writePolicies(path.join(dir, 'policies'), { 'read.cedar': READ_POLICY })
    const config = writeConfig(dir, 'mesh:\n  policy_dir: policies\n')
    const result = run(['policy', 'check', '--config', config])
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`${path.join(dir, 'policies')}: 1 policy valid against the aegis-node schema\n`)
  })

  it('DIR wins over policy_dir', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(dir, 'mesh:\n  policy_dir: missing-policies\n')
    const other = writePolicies(path.join(dir, 'other'), { 'write.cedar': WRITE_POLICIES })
    const result = run(['policy', 'check', other, '--config', config])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain(`${other}: 2 policies`)
  })

  it('rejects a syntax error', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'read.cedar': READ_POLICY, 'broken.cedar': 'permit(principal, action, resource' })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(`${path.join(dir, 'broken.cedar')}: `)
    expect(result.stderr).toContain('unexpected end of input')
  })

  it('rejects an unknown action', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'delete.cedar': '@id("deleter")\npermit(principal, action == Aegis::Action::"delete", resource);\n' })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(`policies in ${dir} do not match the schema`)
    expect(result.stderr).toContain('policy deleter')
    expect(result.stderr).toContain('unrecognized action `Aegis::Action::"delete"`')
  })

  it('rejects an unknown attribute', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'role.cedar': 'permit(principal, action in Aegis::Action::"Read", resource) when { principal.role == "admin" };\n' })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('policy role.cedar#0')
    expect(result.stderr).toContain('attribute `role` on entity type `Aegis::Node` not found')
  })

  it('rejects a context type mismatch', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'offset.cedar': 'permit(principal, action in Aegis::Action::"Read", resource) when { context.offset == "0" };\n' })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('policy offset.cedar#0')
    expect(result.stderr).toContain('the types Long and String are not compatible')
  })

  it('rejects a duplicate id', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'a.cedar': READ_POLICY, 'b.cedar': READ_POLICY })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(`${path.join(dir, 'b.cedar')}: policy id "trusted-read" is used twice`)
  })

  it('rejects a template', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'template.cedar': 'permit(principal == ?principal, action, resource);\n' })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('policy templates are not supported')
  })

  it('rejects a directory without policies', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'README.txt': 'policies go here' })
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(`${dir} has no .cedar files`)
    expect(result.stderr).toContain('add at least one policy')
  })

  it('rejects a missing directory', () => {
    const dir = path.join(makeTempDir('aegis-policy-'), 'absent')
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(`cannot read the policy directory ${dir}`)
    expect(result.stderr).toContain('no such file or directory')
  })

  it('rejects no directory at all', () => {
    const result = run(['policy', 'check'])
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('no policy directory')
    expect(result.stderr).toContain('aegis-node policy check DIR')
    expect(result.stderr).toContain('mesh.policy_dir')
  })

  it('rejects a mesh without policy_dir', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(dir, 'mesh: {}\n')
    const result = run(['policy', 'check', '--config', config])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('no policy directory')
  })

  it('rejects an unknown subcommand', () => {
    const result = run(['policy', 'lint'])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain('unknown policy command "lint"')
    expect(result.stderr).toContain('aegis-node policy check [DIR]')
  })

  // Errors reading a policy file are problems with that file: the CLI must name it and exit 2,
  // not crash with a stack trace or blame the NFS port.
  it('rejects a directory named .cedar', () => {
    const dir = writePolicies(makeTempDir('aegis-policy-'), { 'read.cedar': READ_POLICY })
    fs.mkdirSync(path.join(dir, 'archive.cedar'))
    const result = run(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(path.join(dir, 'archive.cedar'))
    expect(result.stderr).not.toContain('    at ')
  })

  it('unreadable file names the file', () => {
    const dir = writePolicies(makeOpenTempDir(), { 'read.cedar': READ_POLICY, 'secret.cedar': READ_POLICY.replace('trusted-read', 'other') })
    fs.chmodSync(path.join(dir, 'secret.cedar'), 0o000)
    const result = runWithoutRoot(['policy', 'check', dir])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(path.join(dir, 'secret.cedar'))
    expect(result.stderr).not.toContain('ports below 1024')
    expect(result.stderr).not.toContain('--nfs-port')
  })
})

describe('aegis-node serve with a seal volume', () => {
  it('refuses to start without mesh', () => {
    const dir = makeTempDir('aegis-mesh-cli-')
    const config = writeConfig(
      dir,
      `  - name: remote
    type: seal
    mount_path: /workspace/remote
    access_mode: read-write
    config: {node_id: node-b, remote_volume_id: shared}
`
    )
    const result = run(['serve', '--config', config, '--nfs-port', '0', '--nfs-bind', '127.0.0.1'])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(`${config}: volumes[1].type (volume remote): a seal volume lives on another node`)
    expect(result.stderr).toContain('add a mesh: section')
    expect(result.stdout).not.toContain('listening')

    // The volumes are checked before the data directory is created.
    expect(fs.existsSync(path.join(dir, 'state'))).toBe(false)
  })
})
