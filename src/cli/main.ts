#!/usr/bin/env node
// The aegis-node command line: `serve` runs the node, `exports` prints how to mount its volumes,
// `id` prints the node's mesh identity and `policy check` validates Cedar policies.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { ConfigError, embeddedDefaultConfig, formatExports, formatSize, loadConfigFile, type ConfigOverrides, type NodeConfig } from '../config/index.js'
import { askNode, ControlUnavailable } from '../control.js'
import type { PeerView, VolumeAdvert } from '../mesh/adverts.js'
import { IdentityError, loadOrCreateIdentity } from '../mesh/identity.js'
import { checkPolicies, PolicyError } from '../mesh/policy.js'
import { AegisNode, StartupError } from '../node.js'
import { SecretResolver } from '../secrets/index.js'

// Reads and writes run on libuv's thread pool, whose default of four threads limits parallel I/O.
// The pool starts on first use, so this must run before anything touches the file system.
process.env.UV_THREADPOOL_SIZE ??= '16'

/**
 * Time a stop may take, uploads of staged OpenDAL data included. Data still staged after it is
 * uploaded at the next start.
 */
const STOP_TIMEOUT_MS = 5 * 60_000

const USAGE = `Usage: aegis-node <command> [options]

Commands:
  serve      Run the node: serve every configured volume over NFSv3 until SIGINT or SIGTERM.
  exports    Print the kernel mount command and docker volume options for each volume.
  id         Print the node's peer id (creating its identity on first use) and mesh addresses.
  policy check [DIR]
             Validate the Cedar policies of DIR (default: mesh.policy_dir) against the schema.
  mesh peers | mesh volumes
             Ask the running node which peers and which volumes it sees in the mesh.

Options:
  --config FILE      Node configuration (YAML). Without it, the embedded default: one read-write
                     scratch volume of 1 GiB stored in the data directory.
  --data-dir DIR     Data directory (handle key, audit trail, local volumes); default ./.aegis
  --nfs-port PORT    TCP port for MOUNT and NFS; default 2049 (0 picks a free port)
  --nfs-bind ADDR    Address to listen on; default 127.0.0.1
  --log-level LEVEL  trace, debug, info, warn or error; default info
  --version          Print the version.
  -h, --help         Show this help.
`

function packageVersion(): string {
  const packageJson = new URL('../../../package.json', import.meta.url)
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version
}

function fail(message: string): never {
  process.stderr.write(`aegis-node: ${message}\n`)
  process.exit(2)
}

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) > 65535) fail(`command line: --nfs-port ${JSON.stringify(value)} is not a port number; give 0 to 65535`)
  return Number(value)
}

async function loadConfig(values: Record<string, string | boolean | undefined>): Promise<NodeConfig> {
  const overrides: ConfigOverrides = {}
  if (typeof values['data-dir'] === 'string') overrides.dataDir = values['data-dir']
  const port = parsePort(values['nfs-port'] as string | undefined)
  if (port !== undefined) overrides.nfsPort = port
  if (typeof values['nfs-bind'] === 'string') overrides.nfsBind = values['nfs-bind']
  const configPath = values.config
  return typeof configPath === 'string' ? loadConfigFile(configPath, overrides) : embeddedDefaultConfig(overrides)
}

async function serve(config: NodeConfig, logLevel: string): Promise<void> {
  // Every line passes through the resolver's redaction, so that a resolved credential that a
  // backend echoes in an error message never reaches the log.
  let redact = (line: string): string => line
  const logger = pino({ level: logLevel, base: { node: config.nodeName }, hooks: { streamWrite: (line) => redact(line) } })
  const secrets = new SecretResolver({ vault: config.secrets.vault, logger: logger.child({ component: 'secrets' }) })
  redact = (line) => secrets.redact(line)
  logger.info({ config: config.source, dataDir: config.dataDir, volumes: config.volumes.length }, 'aegis-node starting')
  const node = new AegisNode(config, logger, { secrets })
  try {
    await node.start()
  } catch (error) {
    // A message may quote a value that a reference resolved to; the filter hides it.
    if (error instanceof StartupError) throw new StartupError(secrets.redact(error.message))
    throw error
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping: no new connections, finishing requests in flight')
    // The timer also keeps the process alive while the stop waits on promises alone.
    setTimeout(() => {
      logger.error({ signal, timeoutMs: STOP_TIMEOUT_MS }, 'stop did not finish in time; exiting without a clean stop')
      process.exit(1)
    }, STOP_TIMEOUT_MS)
    node.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed')
        process.exit(1)
      }
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGHUP', () => {
    if (config.mesh === null) return void logger.info('SIGHUP ignored: without a mesh section the node has no policies to reload')
    logger.info('SIGHUP: reloading the Cedar policies')
    node.reloadPolicies()
  })
}

async function printId(config: NodeConfig): Promise<void> {
  const identity = await loadOrCreateIdentity(config.dataDir)
  const lines = [`peer id: ${identity.peerId}`, `key file: ${identity.keyPath}`]
  if (config.mesh === null) lines.push('mesh: not configured (add a mesh: section to join a mesh)')
  else for (const address of config.mesh.listen) lines.push(`listen: ${address}/p2p/${identity.peerId}`)
  process.stdout.write(lines.join('\n') + '\n')
}

/** Formats rows as columns separated by two spaces, the first row being the header. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ')).join('\n') + '\n'
}

async function meshCommand(config: NodeConfig, what: string | undefined): Promise<void> {
  if (what === undefined) fail('missing mesh command; use: aegis-node mesh peers, or aegis-node mesh volumes')
  if (what !== 'peers' && what !== 'volumes') fail(`unknown mesh command ${JSON.stringify(what)}; use: aegis-node mesh peers, or aegis-node mesh volumes`)
  const result = await askNode(config.dataDir, `mesh ${what}`)
  if (what === 'peers') {
    const peers = result as PeerView[]
    if (peers.length === 0) return void process.stdout.write('no peers\n')
    const rows = [['PEER', 'NAME', 'CONNECTED', 'VOLUMES', 'LISTEN ADDRESSES', 'CONNECTION ADDRESSES']]
    for (const peer of peers) {
      rows.push([peer.peerId, peer.nodeName ?? '-', peer.connected ? 'yes' : 'no', String(peer.volumes), peer.listenAddresses.join(',') || '-', peer.addresses.join(',') || '-'])
    }
    process.stdout.write(table(rows))
  } else {
    const volumes = result as VolumeAdvert[]
    if (volumes.length === 0) return void process.stdout.write('no volumes\n')
    const rows = [['VOLUME', 'OWNER', 'OWNER PEER', 'ACCESS', 'CLASS', 'SIZE LIMIT']]
    for (const volume of volumes) rows.push([volume.id, volume.ownerName, volume.owner, volume.accessMode, volume.storageClass, volume.sizeLimitBytes === null ? '-' : formatSize(volume.sizeLimitBytes)])
    process.stdout.write(table(rows))
  }
}

function policyCheck(config: NodeConfig, directory: string | undefined): void {
  const target = directory ?? config.mesh?.policyDir ?? null
  if (target === null) fail('no policy directory: give one (aegis-node policy check DIR) or set mesh.policy_dir in the config')
  const policies = checkPolicies(target)
  const count = Object.keys(policies).length
  process.stdout.write(`${target}: ${count} ${count === 1 ? 'policy' : 'policies'} valid against the aegis-node schema\n`)
}

async function main(): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'data-dir': { type: 'string' },
        'nfs-port': { type: 'string' },
        'nfs-bind': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' }
      }
    })
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`)
  }
  const { values, positionals } = parsed
  const command = positionals[0]
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`)
    return
  }
  if (values.help || command === undefined) {
    process.stdout.write(USAGE)
    return
  }

  // Operands each command takes: a stray word must not start a node on its defaults.
  const operands: Record<string, number> = { serve: 0, exports: 0, id: 0, mesh: 1, policy: 2 }
  const extra = positionals.slice(1 + (operands[command] ?? Number.POSITIVE_INFINITY))
  if (extra.length > 0) fail(`unexpected argument ${JSON.stringify(extra[0])} after "aegis-node ${positionals.slice(0, positionals.length - extra.length).join(' ')}"; options start with --, see aegis-node --help`)

  const logLevel = values['log-level'] as string
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(logLevel)) fail(`--log-level ${JSON.stringify(logLevel)} is not a level; use trace, debug, info, warn or error`)

  try {
    const config = await loadConfig(values)
    if (command === 'serve') await serve(config, logLevel)
    else if (command === 'exports') process.stdout.write(formatExports(config, config.nfs.port))
    else if (command === 'id') await printId(config)
    else if (command === 'policy' && positionals[1] === 'check') policyCheck(config, positionals[2])
    else if (command === 'mesh') await meshCommand(config, positionals[1])
    else if (command === 'policy') fail(`unknown policy command ${JSON.stringify(positionals[1] ?? '')}; use: aegis-node policy check [DIR]`)
    else fail(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`)
  } catch (error) {
    if (error instanceof ConfigError || error instanceof StartupError || error instanceof IdentityError || error instanceof PolicyError || error instanceof ControlUnavailable) fail(error.message)
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') fail(`the NFS port is already in use: ${(error as Error).message}; stop the other server or choose --nfs-port`)
    if ((error as NodeJS.ErrnoException).code === 'EACCES' && (error as NodeJS.ErrnoException).syscall === 'listen') fail(`${(error as Error).message}; ports below 1024 need root or CAP_NET_BIND_SERVICE, or choose --nfs-port`)
    if ((error as NodeJS.ErrnoException).code === 'EACCES') fail(`${(error as Error).message}; give this user access to that path, or run as the node's user`)
    throw error
  }
}

await main()
