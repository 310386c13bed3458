// A mesh peer in its own process for the tests: `serve DATA_DIR TRUSTED` listens on loopback and
// prints its addresses; `dial DATA_DIR TRUSTED ADDRESS` connects once and prints the outcome.
// TRUSTED is "any" or a comma-separated list of peer ids. Uses the compiled node (npm run build).

import { pino } from 'pino'
import { loadOrCreateIdentity } from '../../dist/src/mesh/identity.js'
import { createMeshNode } from '../../dist/src/mesh/libp2p.js'
import { multiaddr } from '@multiformats/multiaddr'

const [mode, dataDir, trusted, address] = process.argv.slice(2)
const identity = await loadOrCreateIdentity(dataDir)
const node = await createMeshNode({
  identity,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  trustedPeers: trusted === 'any' ? 'any' : trusted.split(','),
  logger: pino({ level: 'silent' })
})

if (mode === 'serve') {
  process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addresses: node.getMultiaddrs().map(String) }) + '\n')
  process.on('SIGTERM', () => node.stop().then(() => process.exit(0)))
} else {
  let result
  try {
    const connection = await node.dial(multiaddr(address), { signal: AbortSignal.timeout(5000) })
    // An untrusted peer may close the connection right after the handshake; give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 500))
    result = { connected: connection.status === 'open', remotePeer: connection.remotePeer.toString() }
  } catch (error) {
    result = { connected: false, error: error.message }
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  await node.stop()
  process.exit(0)
}
