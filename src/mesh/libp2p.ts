// The node's libp2p peer: TCP, Noise and yamux, identify, gossipsub, and the trust rule for
// connections.

import './polyfill.js'
import { noise } from '@chainsafe/libp2p-noise'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import type { PeerId } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import type { NodeIdentity } from './identity.js'

export interface MeshOptions {
  identity: NodeIdentity
  /** Multiaddrs to listen on, such as /ip4/127.0.0.1/tcp/4001. */
  listen: string[]
  /** Peer ids allowed to connect in either direction, or 'any'. */
  trustedPeers: readonly string[] | 'any'
  logger: Logger
}

/**
 * Returns true when the trust configuration lets `peerId` connect. Enforced once a connection
 * is encrypted, when the remote peer id is proven, for inbound and outbound connections alike.
 */
export function isTrusted(trustedPeers: readonly string[] | 'any', peerId: string): boolean {
  return trustedPeers === 'any' || trustedPeers.includes(peerId)
}

export type MeshNode = Libp2p<{ identify: Identify; pubsub: GossipSub }>

export async function createMeshNode(options: MeshOptions): Promise<MeshNode> {
  const { logger, trustedPeers } = options
  const deny = (peerId: PeerId, direction: string): boolean => {
    if (isTrusted(trustedPeers, peerId.toString())) return false
    logger.warn({ peer: peerId.toString(), direction }, `closed the connection of untrusted peer ${peerId.toString()}; add its peer id to mesh.trusted_peers to let it in`)
    return true
  }

  const node = await createLibp2p({
    privateKey: options.identity.libp2pKey,
    addresses: { listen: options.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      // A mesh of two nodes is normal here, so publishing must work before any peer subscribes.
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false })
    },
    connectionGater: {
      denyInboundEncryptedConnection: (peerId) => deny(peerId, 'inbound'),
      denyOutboundEncryptedConnection: (peerId) => deny(peerId, 'outbound')
    }
  })
  return node
}
