// The node's persistent Ed25519 identity: created on first start, kept in the data directory,
// and the source of its libp2p peer id and of every SealEnvelope signature.

import { createPrivateKey } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdOfKey, type SealIdentity } from './envelope.js'

export const IDENTITY_FILE = 'node.key'
/** DER prefix of an Ed25519 PKCS #8 private key (RFC 8410); the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Thrown when the identity file cannot be used; the message names the file and the fix. */
export class IdentityError extends Error {
  override name = 'IdentityError'
}

export interface NodeIdentity extends SealIdentity {
  /** The same key in the form libp2p takes. */
  libp2pKey: PrivateKey
  keyPath: string
}

/**
 * Loads the node's identity from `<dataDir>/node.key` (the libp2p protobuf encoding of an
 * Ed25519 private key), creating it with mode 0600 on first start. A file that others can read
 * is rejected, because anyone who reads it can act as this node on the mesh.
 */
export async function loadOrCreateIdentity(dataDir: string): Promise<NodeIdentity> {
  const keyPath = path.join(dataDir, IDENTITY_FILE)
  if (!fs.existsSync(keyPath)) {
    const created = await generateKeyPair('Ed25519')
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    fs.writeFileSync(keyPath, privateKeyToProtobuf(created), { mode: 0o600, flag: 'wx' })
  }

  const mode = fs.statSync(keyPath).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new IdentityError(`${keyPath} has mode ${mode.toString(8)}; it must be readable by its owner only: chmod 600 ${keyPath}`)
  }

  let bytes: Buffer
  try {
    bytes = fs.readFileSync(keyPath)
  } catch (error) {
    throw new IdentityError(`cannot read ${keyPath}: ${(error as Error).message}; run aegis-node as the user that owns the file`)
  }
  let libp2pKey: PrivateKey
  try {
    libp2pKey = privateKeyFromProtobuf(bytes)
  } catch (error) {
    throw new IdentityError(`${keyPath} is not a private key (${(error as Error).message}); restore it from a backup, or delete it to give the node a new identity`)
  }
  if (libp2pKey.type !== 'Ed25519') {
    throw new IdentityError(`${keyPath} contains a ${libp2pKey.type} key; aegis-node needs an Ed25519 key, so delete the file to create one`)
  }

  // libp2p keeps the 32-byte seed followed by the 32-byte public key.
  const seed = libp2pKey.raw.subarray(0, 32)
  const publicKey = libp2pKey.publicKey.raw
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  return { peerId: peerIdOfKey(publicKey), publicKey, privateKey, libp2pKey, keyPath }
}
