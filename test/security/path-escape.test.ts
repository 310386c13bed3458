// Path-escape attempts against a hostPath volume whose host directory sits next to secret files,
// and against a local volume kept in the node's data directory (next to the handle key). Every
// attempt goes over TCP to a real node; the host file system is checked directly.
//
// The tests of each describe block run in order and share one node: the last block stops it and
// reads the audit trail, so it must stay last.

import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type HostEntry,
  type ObservedCall,
  Traffic,
  connectObserved,
  diffSnapshots,
  forgeHandle,
  handleFields,
  hmacTag,
  longName,
  snapshotTree,
  stopAndReadAudit
} from '../helpers/attack.js'
import { Nfs3Client, StableHow } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'

const GARBAGE_ARGS = 4
const MOUNT_PROCEDURES = new Set(['MOUNT_NULL', 'MNT', 'DUMP', 'UMNT', 'UMNTALL', 'EXPORT'])
/** NFS statuses that AegisFSAL returns only for refused escape attempts. */
const BLOCKED_STATUSES = ['ACCES', 'BADHANDLE', 'XDEV']

describe('path escape', () => {
  const root = makeTempDir('aegis-escape-')
  const vol = path.join(root, 'vol')
  const other = path.join(root, 'other')
  const dataDir = path.join(root, 'data')
  const secretPath = path.join(root, 'secret.txt')
  const secretDir = path.join(root, 'secretdir')
  const secretToken = Buffer.from(`SECRET-${randomBytes(12).toString('hex')}`)
  const innerToken = Buffer.from(`INNER-${randomBytes(12).toString('hex')}`)
  const secretContent = Buffer.concat([secretToken, Buffer.alloc(4099 - secretToken.length, 0x53)])
  const passwdLine = Buffer.from(fs.readFileSync('/etc/passwd', 'utf8').split('\n')[0])
  const traffic = new Traffic()
  /** Paths below `root` that the volumes own; everything else must not change. */
  const volumePaths = ['vol', 'other', 'data/volumes', 'data/audit.jsonl']

  let node: TestNode
  let client: Nfs3Client
  let hpRoot: Buffer
  let otherRoot: Buffer
  let locRoot: Buffer
  let secretIno: bigint
  let outsideBefore: Map<string, HostEntry>

  beforeAll(async () => {
    fs.writeFileSync(secretPath, secretContent, { mode: 0o600 })
    fs.mkdirSync(secretDir)
    fs.writeFileSync(path.join(secretDir, 'inner.txt'), innerToken)
    fs.mkdirSync(path.join(vol, 'sub'), { recursive: true })
    fs.writeFileSync(path.join(vol, 'inside.txt'), 'inside\n')
    fs.writeFileSync(path.join(vol, 'sub', 'x'), 'x\n')
    // Links and special files a host administrator could leave in the volume.
    fs.symlinkSync('../secret.txt', path.join(vol, 'host-link'))
    fs.symlinkSync(secretPath, path.join(vol, 'host-abs-link'))
    fs.symlinkSync('../secretdir', path.join(vol, 'host-dirlink'))
    fs.symlinkSync('../../secretdir', path.join(vol, 'sub', 'deep-dirlink'))
    execFileSync('mkfifo', [path.join(vol, 'host-fifo')])
    execFileSync('mknod', [path.join(vol, 'host-chardev'), 'c', '1', '5'])
    fs.mkdirSync(other)
    fs.writeFileSync(path.join(other, 'o.txt'), 'other\n')
    secretIno = fs.statSync(secretPath, { bigint: true }).ino

    node = await startTestNode({
      dataDir,
      volumesYaml: hostPathVolumeYaml('hp', vol, 'read-write') + hostPathVolumeYaml('other', other, 'read-write') + localVolumeYaml('loc')
    })
    outsideBefore = snapshotTree(root, volumePaths)
    client = await connectObserved(node.port, traffic)
    hpRoot = await client.mount('/hp')
    otherRoot = await client.mount('/other')
    locRoot = await client.mount('/loc')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  /** The handle of a name that must exist. */
  async function handleOf(dir: Buffer, name: string): Promise<Buffer> {
    return client.lookupHandle(dir, name)
  }

  describe('MNT paths', () => {
    it.each([
      ['/', 'NOENT'],
      ['/..', 'NOENT'],
      ['/../hp', 'NOENT'],
      ['/hp/..', 'ACCES'],
      ['/hp/../secret.txt', 'ACCES'],
      ['/hp/sub/../..', 'ACCES'],
      ['/hp/./sub', 'ACCES'],
      ['/hp/host-dirlink', 'NOTDIR'],
      ['/hp/sub/deep-dirlink', 'NOTDIR'],
      ['/hp/inside.txt', 'NOTDIR'],
      ['/hp/%2e%2e', 'NOENT'],
      ['/not-exported', 'NOENT'],
      ['/secret.txt', 'NOENT']
    ])('MNT %s returns %s', async (dirPath, expected) => {
      const result = await client.mnt(dirPath)
      expect(result.status).toBe(expected)
    })

    it('MNT of host path is refused', async () => {
      const result = await client.mnt(vol)
      expect(result.status).toBe('NOENT')
    })

    it('MNT of secret directory refused', async () => {
      const result = await client.mnt(secretDir)
      expect(result.status).toBe('NOENT')
    })

    it('MNT of //hp is the root', async () => {
      const result = await client.mnt('//hp')
      expect(result.handle).toEqual(hpRoot)
    })
  })

  describe('LOOKUP names', () => {
    const blockedNames: Array<[string, string | Buffer]> = [
      ['dot-dot', '..'],
      ['dot', '.'],
      ['empty name', ''],
      ['two components', 'sub/x'],
      ['parent path', '../secret.txt'],
      ['absolute host path', secretPath],
      ['trailing NUL', Buffer.from('inside.txt\0')],
      ['NUL before parent', Buffer.from('\0../secret.txt')],
      ['dot-dot with NUL', Buffer.from('..\0')],
      ['invalid UTF-8', Buffer.from([0xff, 0xfe])],
      ['overlong dot-dot', Buffer.from([0xc0, 0xae, 0xc0, 0xae])],
      ['overlong slash', Buffer.concat([Buffer.from('..'), Buffer.from([0xc0, 0xaf]), Buffer.from('secret.txt')])],
      ['lone surrogate', Buffer.from([0xed, 0xa0, 0x80])]
    ]

    it.each(blockedNames)('LOOKUP rejects %s', async (_label, name) => {
      const result = await client.lookup(hpRoot, name)
      expect(result.status).toBe('ACCES')
    })

    it('LOOKUP dot-dot in subdirectory rejected', async () => {
      const sub = await handleOf(hpRoot, 'sub')
      const result = await client.lookup(sub, '..')
      expect(result.status).toBe('ACCES')
    })

    it('LOOKUP of 256-byte name', async () => {
      const result = await client.lookup(hpRoot, longName(256))
      expect(result.status).toBe('NAMETOOLONG')
    })

    it('CREATE of 256-byte name', async () => {
      const result = await client.create(hpRoot, longName(256))
      expect(result.status).toBe('NAMETOOLONG')
    })

    it('CREATE of 255-byte name works', async () => {
      const result = await client.create(hpRoot, longName(255))
      expect(result.status).toBe('OK')
    })

    it('name over wire limit is garbage', async () => {
      await expect(client.lookup(hpRoot, longName(4096))).rejects.toMatchObject({ reply: { stat: GARBAGE_ARGS } })
    })

    it('connection survives garbage name', async () => {
      const result = await client.getattr(hpRoot)
      expect(result.status).toBe('OK')
    })
  })

  describe('literal odd names', () => {
    const literalNames = [
      '%2e%2e',
      '%2e%2e%2fsecret.txt',
      '..%2f..%2fsecret.txt',
      '..\\',
      '..\\secret.txt',
      '\u2025',
      '\uff0e\uff0e',
      '\u2024\u2024',
      '.. ',
      ' ..',
      '. ',
      '...',
      '..\u200b',
      '..\t',
      'secret.txt',
      '~root'
    ]

    it.each(literalNames)('LOOKUP %j finds nothing', async (name) => {
      const result = await client.lookup(hpRoot, name)
      expect(result.status).toBe('NOENT')
    })

    it.each(literalNames)('CREATE %j stays literal', async (name) => {
      const created = await client.create(hpRoot, name, { mode: 'guarded' })
      expect(created.status).toBe('OK')
      const onHost = fs.lstatSync(path.join(vol, name), { bigint: true })
      expect(BigInt(created.attributes!.fileid)).toBe(onHost.ino)
    })

    it('WRITE to literal secret.txt stays inside', async () => {
      const handle = await handleOf(hpRoot, 'secret.txt')
      const written = await client.write(handle, 0, Buffer.from('volume copy'), StableHow.FILE_SYNC)
      expect(written.status).toBe('OK')
      expect(fs.readFileSync(path.join(vol, 'secret.txt'), 'utf8')).toBe('volume copy')
    })
  })

  describe('names in modifying procedures', () => {
    it('CREATE with parent path rejected', async () => {
      const result = await client.create(hpRoot, '../escape-create.txt')
      expect(result.status).toBe('ACCES')
    })

    it('CREATE with absolute path rejected', async () => {
      const result = await client.create(hpRoot, path.join(root, 'escape-abs.txt'))
      expect(result.status).toBe('ACCES')
    })

    it('MKDIR with parent path rejected', async () => {
      const result = await client.mkdir(hpRoot, '../escape-dir')
      expect(result.status).toBe('ACCES')
    })

    it('SYMLINK with parent name rejected', async () => {
      const result = await client.symlink(hpRoot, '../escape-link', 'anything')
      expect(result.status).toBe('ACCES')
    })

    it('MKNOD with parent name rejected', async () => {
      const result = await client.mknodFifo(hpRoot, '../escape-fifo')
      expect(result.status).toBe('ACCES')
    })

    it('REMOVE of parent secret rejected', async () => {
      const result = await client.remove(hpRoot, '../secret.txt')
      expect(result.status).toBe('ACCES')
    })

    it('RMDIR of parent directory rejected', async () => {
      const result = await client.rmdir(hpRoot, '../secretdir')
      expect(result.status).toBe('ACCES')
    })

    it('RMDIR of dot-dot rejected', async () => {
      const sub = await handleOf(hpRoot, 'sub')
      const result = await client.rmdir(sub, '..')
      expect(result.status).toBe('ACCES')
    })

    it('RENAME to parent path rejected', async () => {
      const result = await client.rename(hpRoot, 'inside.txt', hpRoot, '../stolen.txt')
      expect(result.status).toBe('ACCES')
    })

    it('RENAME from parent path rejected', async () => {
      const result = await client.rename(hpRoot, '../secret.txt', hpRoot, 'got.txt')
      expect(result.status).toBe('ACCES')
    })

    it('RENAME with slash rejected', async () => {
      const result = await client.rename(hpRoot, 'sub/x', hpRoot, 'x-moved')
      expect(result.status).toBe('ACCES')
    })

    it('RENAME to dot-dot rejected', async () => {
      const sub = await handleOf(hpRoot, 'sub')
      const result = await client.rename(sub, 'x', sub, '..')
      expect(result.status).toBe('ACCES')
    })

    it('LINK to parent path rejected', async () => {
      const inside = await handleOf(hpRoot, 'inside.txt')
      const result = await client.link(inside, hpRoot, '../linked.txt')
      expect(result.status).toBe('ACCES')
    })

    it('inside.txt is still in place', () => {
      expect(fs.readFileSync(path.join(vol, 'inside.txt'), 'utf8')).toBe('inside\n')
    })

    it('got.txt was not created', () => {
      expect(fs.existsSync(path.join(vol, 'got.txt'))).toBe(false)
    })
  })

  describe('symlinks made over NFS', () => {
    let relLink: Buffer

    it('SYMLINK to parent secret is stored', async () => {
      const link = await client.symlink(hpRoot, 'l-rel', '../secret.txt')
      expect(link.status).toBe('OK')
      relLink = link.handle!
    })

    it('symlink attributes are its own', async () => {
      const attributes = await client.attributesOf(relLink)
      expect(attributes.type).toBe('LNK')
      expect(attributes.size).toBe('../secret.txt'.length)
      expect(BigInt(attributes.fileid)).toBe(fs.lstatSync(path.join(vol, 'l-rel'), { bigint: true }).ino)
    })

    it('READ of symlink is INVAL', async () => {
      const result = await client.read(relLink, 0, 8192)
      expect(result.status).toBe('INVAL')
    })

    it('WRITE to symlink is INVAL', async () => {
      const result = await client.write(relLink, 0, Buffer.from('overwrite'), StableHow.FILE_SYNC)
      expect(result.status).toBe('INVAL')
    })

    it('LOOKUP inside symlink is NOTDIR', async () => {
      const result = await client.lookup(relLink, 'x')
      expect(result.status).toBe('NOTDIR')
    })

    it('SETATTR size on symlink is INVAL', async () => {
      const result = await client.setattr(relLink, { size: 0 })
      expect(result.status).toBe('INVAL')
    })

    it('SETATTR mode leaves secret alone', async () => {
      await client.setattr(relLink, { mode: 0o777 })
      expect(fs.statSync(secretPath).mode & 0o7777).toBe(0o600)
    })

    it('SETATTR mtime leaves secret alone', async () => {
      const before = fs.statSync(secretPath, { bigint: true }).mtimeNs
      await client.setattr(relLink, { mtime: { sec: 1_000_000, nsec: 0 } })
      expect(fs.statSync(secretPath, { bigint: true }).mtimeNs).toBe(before)
    })

    it('READLINK returns the stored target', async () => {
      const result = await client.readlink(relLink)
      expect(result.target?.toString()).toBe('../secret.txt')
    })

    it('COMMIT on symlink touches nothing', async () => {
      const result = await client.commit(relLink)
      expect(result.status).toBe('OK')
    })

    it('CREATE over symlink name is EXIST', async () => {
      const result = await client.create(hpRoot, 'l-rel', { mode: 'unchecked', attributes: { size: 0 } })
      expect(result.status).toBe('EXIST')
    })

    it('LINK of symlink adds no secret link', async () => {
      await client.link(relLink, hpRoot, 'l-rel-hard')
      expect(fs.statSync(secretPath).nlink).toBe(1)
    })

    it('READ of hard-linked symlink is INVAL', async () => {
      const found = await client.lookup(hpRoot, 'l-rel-hard')
      const status = found.handle === null ? found.status : (await client.read(found.handle, 0, 8192)).status
      expect(['INVAL', 'NOENT']).toContain(status)
    })

    it('READ of /etc/passwd link is INVAL', async () => {
      const link = await client.symlink(hpRoot, 'l-passwd', '/etc/passwd')
      const result = await client.read(link.handle!, 0, 8192)
      expect(result.status).toBe('INVAL')
    })

    it('READ of absolute secret link is INVAL', async () => {
      const link = await client.symlink(hpRoot, 'l-abs', secretPath)
      const result = await client.read(link.handle!, 0, 8192)
      expect(result.status).toBe('INVAL')
    })

    it('READ through symlink chain is INVAL', async () => {
      await client.symlink(hpRoot, 'l-chain-b', '../secret.txt')
      const link = await client.symlink(hpRoot, 'l-chain-a', 'l-chain-b')
      const result = await client.read(link.handle!, 0, 8192)
      expect(result.status).toBe('INVAL')
    })

    it('LOOKUP through symlink chain is NOTDIR', async () => {
      await client.symlink(hpRoot, 'l-dirchain-b', secretDir)
      const link = await client.symlink(hpRoot, 'l-dirchain-a', 'l-dirchain-b')
      const result = await client.lookup(link.handle!, 'inner.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('SYMLINK target with NUL is INVAL', async () => {
      const result = await client.symlink(hpRoot, 'l-nul', Buffer.from('inside.txt\0../secret.txt'))
      expect(result.status).toBe('INVAL')
    })

    it('REMOVE of symlink keeps secret', async () => {
      const removed = await client.remove(hpRoot, 'l-abs')
      expect(removed.status).toBe('OK')
      expect(fs.readFileSync(secretPath)).toEqual(secretContent)
    })
  })

  describe('directory symlink made over NFS', () => {
    let dirLink: Buffer

    beforeAll(async () => {
      const link = await client.symlink(hpRoot, 'l-dir', secretDir)
      dirLink = link.handle!
    })

    it('LOOKUP in directory link is NOTDIR', async () => {
      const result = await client.lookup(dirLink, 'inner.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('CREATE in directory link is NOTDIR', async () => {
      const result = await client.create(dirLink, 'planted.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('MKDIR in directory link is NOTDIR', async () => {
      const result = await client.mkdir(dirLink, 'planted-dir')
      expect(result.status).toBe('NOTDIR')
    })

    it('SYMLINK in directory link is NOTDIR', async () => {
      const result = await client.symlink(dirLink, 'planted-link', 'x')
      expect(result.status).toBe('NOTDIR')
    })

    it('REMOVE in directory link is NOTDIR', async () => {
      const result = await client.remove(dirLink, 'inner.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('RMDIR in directory link is NOTDIR', async () => {
      const result = await client.rmdir(dirLink, 'inner.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('READDIR of directory link is NOTDIR', async () => {
      const result = await client.readdir(dirLink, 0n, Buffer.alloc(8), 8192)
      expect(result.status).toBe('NOTDIR')
    })

    it('READDIRPLUS of directory link is NOTDIR', async () => {
      const result = await client.readdirplus(dirLink, 0n, Buffer.alloc(8), 8192, 32768)
      expect(result.status).toBe('NOTDIR')
    })

    it('RENAME into directory link is NOTDIR', async () => {
      const result = await client.rename(hpRoot, 'inside.txt', dirLink, 'stolen.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('RENAME out of directory link is NOTDIR', async () => {
      const result = await client.rename(dirLink, 'inner.txt', hpRoot, 'inner-stolen.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('LINK into directory link is NOTDIR', async () => {
      const inside = await handleOf(hpRoot, 'inside.txt')
      const result = await client.link(inside, dirLink, 'linked.txt')
      expect(result.status).toBe('NOTDIR')
    })
  })

  describe('dangling symlink to outside', () => {
    const outsideTarget = path.join(root, 'created-through-link.txt')

    beforeAll(async () => {
      await client.symlink(hpRoot, 'l-dangle', '../created-through-link.txt')
    })

    it.each(['unchecked', 'guarded'] as const)('CREATE %s is EXIST', async (mode) => {
      const result = await client.create(hpRoot, 'l-dangle', { mode, attributes: { size: 0 } })
      expect(result.status).toBe('EXIST')
    })

    it('exclusive CREATE is EXIST', async () => {
      const result = await client.create(hpRoot, 'l-dangle', { mode: 'exclusive', verifier: Buffer.from('verifier') })
      expect(result.status).toBe('EXIST')
    })

    it('MKDIR over dangling link is EXIST', async () => {
      const result = await client.mkdir(hpRoot, 'l-dangle')
      expect(result.status).toBe('EXIST')
    })

    it('link target was never created', () => {
      expect(fs.existsSync(outsideTarget)).toBe(false)
    })
  })

  describe('symlinks planted on the host', () => {
    it('LOOKUP shows the link itself', async () => {
      const found = await client.lookup(hpRoot, 'host-link')
      expect(found.attributes?.type).toBe('LNK')
      expect(BigInt(found.attributes!.fileid)).toBe(fs.lstatSync(path.join(vol, 'host-link'), { bigint: true }).ino)
    })

    it('READ of host link is INVAL', async () => {
      const result = await client.read(await handleOf(hpRoot, 'host-link'), 0, 8192)
      expect(result.status).toBe('INVAL')
    })

    it('READ of absolute host link is INVAL', async () => {
      const result = await client.read(await handleOf(hpRoot, 'host-abs-link'), 0, 8192)
      expect(result.status).toBe('INVAL')
    })

    it('WRITE to host link is INVAL', async () => {
      const result = await client.write(await handleOf(hpRoot, 'host-link'), 0, Buffer.from('x'), StableHow.FILE_SYNC)
      expect(result.status).toBe('INVAL')
    })

    it('SETATTR size on host link is INVAL', async () => {
      const result = await client.setattr(await handleOf(hpRoot, 'host-abs-link'), { size: 0 })
      expect(result.status).toBe('INVAL')
    })

    it('LINK of host link adds no secret link', async () => {
      await client.link(await handleOf(hpRoot, 'host-link'), hpRoot, 'stolen-hard')
      expect(fs.statSync(secretPath).nlink).toBe(1)
    })

    it('LOOKUP in host directory link is NOTDIR', async () => {
      const result = await client.lookup(await handleOf(hpRoot, 'host-dirlink'), 'inner.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('READDIR of host directory link is NOTDIR', async () => {
      const result = await client.readdir(await handleOf(hpRoot, 'host-dirlink'), 0n, Buffer.alloc(8), 8192)
      expect(result.status).toBe('NOTDIR')
    })

    it('CREATE in host directory link is NOTDIR', async () => {
      const result = await client.create(await handleOf(hpRoot, 'host-dirlink'), 'planted.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('LOOKUP in nested host link is NOTDIR', async () => {
      const result = await client.lookup(await handleOf(hpRoot, 'sub/deep-dirlink'), 'inner.txt')
      expect(result.status).toBe('NOTDIR')
    })

    it('READ of host FIFO is INVAL', async () => {
      const result = await client.read(await handleOf(hpRoot, 'host-fifo'), 0, 16)
      expect(result.status).toBe('INVAL')
    })

    it('WRITE to host FIFO is INVAL', async () => {
      const result = await client.write(await handleOf(hpRoot, 'host-fifo'), 0, Buffer.from('x'), StableHow.FILE_SYNC)
      expect(result.status).toBe('INVAL')
    })

    it('READ of host device is INVAL', async () => {
      const result = await client.read(await handleOf(hpRoot, 'host-chardev'), 0, 16)
      expect(result.status).toBe('INVAL')
    })
  })

  describe('forged handles', () => {
    it.each([0, 1, 16, 37, 39, 64])('handle of %i bytes is BADHANDLE', async (length) => {
      const handle = Buffer.concat([hpRoot, Buffer.alloc(64)]).subarray(0, length)
      const result = await client.getattr(handle)
      expect(result.status).toBe('BADHANDLE')
    })

    it('handle of 65 bytes is garbage', async () => {
      await expect(client.getattr(Buffer.alloc(65, 1))).rejects.toMatchObject({ reply: { stat: GARBAGE_ARGS } })
    })

    it('random handles are BADHANDLE', async () => {
      const statuses: string[] = []
      for (let i = 0; i < 16; i++) statuses.push((await client.getattr(randomBytes(hpRoot.length))).status)
      expect(statuses).toEqual(new Array(16).fill('BADHANDLE'))
    })

    it('every flipped byte is BADHANDLE', async () => {
      const statuses: string[] = []
      for (let index = 0; index < hpRoot.length; index++) {
        const flipped = Buffer.from(hpRoot)
        flipped[index] ^= 0x01
        statuses.push((await client.getattr(flipped)).status)
      }
      expect(statuses).toEqual(new Array(hpRoot.length).fill('BADHANDLE'))
    })

    it('export id of other volume', async () => {
      const swapped = Buffer.from(hpRoot)
      otherRoot.copy(swapped, 2, 2, 6)
      const result = await client.getattr(swapped)
      expect(result.status).toBe('BADHANDLE')
    })

    it.each([
      ['zero key', hmacTag(Buffer.alloc(32))],
      ['plain SHA-256', (body: Buffer) => createHash('sha256').update(body).digest()],
      ['root handle tag', () => hpRoot.subarray(22)]
    ])('secret inode with %s tag', async (_label, tag) => {
      const fields = { ...handleFields(hpRoot), fileId: secretIno, generation: 0n }
      const result = await client.getattr(forgeHandle(fields, tag))
      expect(result.status).toBe('BADHANDLE')
    })

    // A client that somehow learned the handle key still reaches only objects of the volume. A
    // generation of 0 is the value the node uses when a file system reports no birth time.
    it('signed handle for secret is STALE', async () => {
      const key = fs.readFileSync(path.join(dataDir, 'handle.key'))
      const fields = { ...handleFields(hpRoot), fileId: secretIno, generation: 0n }
      const result = await client.read(forgeHandle(fields, hmacTag(key)), 0, 8192)
      expect(result.status).toBe('STALE')
    })

    it('signed handle for secret directory', async () => {
      const key = fs.readFileSync(path.join(dataDir, 'handle.key'))
      const fields = { ...handleFields(hpRoot), fileId: fs.statSync(secretDir, { bigint: true }).ino, generation: 0n }
      const result = await client.lookup(forgeHandle(fields, hmacTag(key)), 'inner.txt')
      expect(result.status).toBe('STALE')
    })

    it('signed handle for other volume file', async () => {
      const key = fs.readFileSync(path.join(dataDir, 'handle.key'))
      const target = path.join(other, 'o.txt')
      const fields = { ...handleFields(hpRoot), fileId: fs.statSync(target, { bigint: true }).ino, generation: 0n }
      const result = await client.read(forgeHandle(fields, hmacTag(key)), 0, 8192)
      expect(result.status).toBe('STALE')
    })

    it('LINK from forged handle is BADHANDLE', async () => {
      const fields = { ...handleFields(hpRoot), fileId: secretIno, generation: 0n }
      const result = await client.link(forgeHandle(fields, hmacTag(Buffer.alloc(32))), hpRoot, 'forged-link')
      expect(result.status).toBe('BADHANDLE')
    })

    it('forged LINK created nothing', () => {
      expect(fs.existsSync(path.join(vol, 'forged-link'))).toBe(false)
    })

    it('RENAME into forged directory', async () => {
      const forged = Buffer.from(hpRoot)
      forged[30] ^= 0xff
      const result = await client.rename(hpRoot, 'inside.txt', forged, 'moved.txt')
      expect(result.status).toBe('BADHANDLE')
    })

    it('LINK into forged directory', async () => {
      const forged = Buffer.from(hpRoot)
      forged[30] ^= 0xff
      const result = await client.link(await handleOf(hpRoot, 'inside.txt'), forged, 'linked.txt')
      expect(result.status).toBe('BADHANDLE')
    })
  })

  describe('cross-volume operations', () => {
    it('RENAME to other volume is XDEV', async () => {
      const result = await client.rename(hpRoot, 'inside.txt', otherRoot, 'moved.txt')
      expect(result.status).toBe('XDEV')
    })

    it('RENAME from other volume is XDEV', async () => {
      const result = await client.rename(otherRoot, 'o.txt', hpRoot, 'o-moved.txt')
      expect(result.status).toBe('XDEV')
    })

    it('RENAME to local volume is XDEV', async () => {
      const result = await client.rename(hpRoot, 'inside.txt', locRoot, 'moved.txt')
      expect(result.status).toBe('XDEV')
    })

    it('LINK into other volume is XDEV', async () => {
      const result = await client.link(await handleOf(hpRoot, 'inside.txt'), otherRoot, 'linked.txt')
      expect(result.status).toBe('XDEV')
    })

    it('LINK from other volume is XDEV', async () => {
      const result = await client.link(await handleOf(otherRoot, 'o.txt'), hpRoot, 'o-linked.txt')
      expect(result.status).toBe('XDEV')
    })

    it('files stayed in their volumes', () => {
      const names = [...fs.readdirSync(other), ...fs.readdirSync(vol).filter((name) => name.startsWith('o-'))].sort()
      expect(names).toEqual(['o.txt'])
    })
  })

  describe('directory listings', () => {
    it('READDIR lists only volume names', async () => {
      const { entries } = await client.listAll(hpRoot)
      const names = entries.map((entry) => entry.name).sort()
      const expected = ['.', '..', ...fs.readdirSync(vol)].sort()
      expect(names).toEqual(expected)
    })

    it('READDIR dot-dot of root is root', async () => {
      const { entries } = await client.listAll(hpRoot)
      const parent = entries.find((entry) => entry.name === '..')
      expect(BigInt(parent!.fileid)).toBe(fs.statSync(vol, { bigint: true }).ino)
    })

    it('READDIRPLUS dot-dot handle is root', async () => {
      const { entries } = await client.listAll(hpRoot, { plus: true })
      const parent = entries.find((entry) => entry.name === '..')
      expect(parent!.handle).toEqual(hpRoot)
    })

    it('READDIRPLUS dot-dot attributes are root', async () => {
      const { entries } = await client.listAll(hpRoot, { plus: true })
      const parent = entries.find((entry) => entry.name === '..')
      expect(BigInt(parent!.attributes!.fileid)).toBe(fs.statSync(vol, { bigint: true }).ino)
    })

    it('READDIRPLUS of sub points back to root', async () => {
      const { entries } = await client.listAll(await handleOf(hpRoot, 'sub'), { plus: true })
      const parent = entries.find((entry) => entry.name === '..')
      expect(parent!.handle).toEqual(hpRoot)
    })

    it('READDIR cookie past end', async () => {
      const result = await client.readdir(hpRoot, 1n << 40n, Buffer.alloc(8), 8192)
      expect(result.status).toBe('BAD_COOKIE')
    })
  })

  describe('local volume', () => {
    it('LOOKUP dot-dot is rejected', async () => {
      const result = await client.lookup(locRoot, '..')
      expect(result.status).toBe('ACCES')
    })

    it('CREATE of handle key path rejected', async () => {
      const result = await client.create(locRoot, '../../handle.key', { mode: 'unchecked', attributes: { size: 0 } })
      expect(result.status).toBe('ACCES')
    })

    it('READ through handle key link', async () => {
      const link = await client.symlink(locRoot, 'key-link', '../../handle.key')
      const result = await client.read(link.handle!, 0, 64)
      expect(result.status).toBe('INVAL')
    })

    it('READDIR lists only volume names', async () => {
      await client.create(locRoot, 'mine.txt')
      const { entries } = await client.listAll(locRoot)
      const names = entries.map((entry) => entry.name).sort()
      expect(names).toEqual(['.', '..', ...fs.readdirSync(path.join(dataDir, 'volumes', 'loc'))].sort())
    })

    it('READDIRPLUS dot-dot is local root', async () => {
      const { entries } = await client.listAll(locRoot, { plus: true })
      const parent = entries.find((entry) => entry.name === '..')
      expect(parent!.handle).toEqual(locRoot)
    })
  })

  describe('after the attempts', () => {
    it('outside files are unchanged', () => {
      const differences = diffSnapshots(outsideBefore, snapshotTree(root, volumePaths))
      expect(differences).toEqual([])
    })

    it('secret is byte-identical', () => {
      expect(fs.readFileSync(secretPath).equals(secretContent)).toBe(true)
    })

    it('no reply carries the secret', () => {
      expect(traffic.contains(secretToken)).toBe(false)
    })

    it('no reply carries the inner file', () => {
      expect(traffic.contains(innerToken)).toBe(false)
    })

    it('no reply carries /etc/passwd', () => {
      expect(traffic.contains(passwdLine)).toBe(false)
    })

    it('no reply carries the handle key', () => {
      expect(traffic.contains(fs.readFileSync(path.join(dataDir, 'handle.key')))).toBe(false)
    })
  })

  describe('audit trail of blocked attempts', () => {
    let events: Array<Record<string, unknown>>
    let nfsEvents: Array<Record<string, unknown>>

    beforeAll(async () => {
      client.close()
      events = await stopAndReadAudit(node)
      nfsEvents = events.filter((event) => !MOUNT_PROCEDURES.has(String(event.procedure)))
    })

    it('every refusal has a blocked event', () => {
      const rejected = nfsEvents.filter((event) => BLOCKED_STATUSES.includes(String(event.status)))
      const unmarked = rejected.filter((event) => event.blocked === undefined).map((event) => `${event.procedure} ${event.path} ${event.status}`)
      expect(unmarked).toEqual([])
    })

    it('blocked events match client refusals', () => {
      const blocked = nfsEvents.filter((event) => typeof event.blocked === 'string')
      expect(blocked.length).toBe(traffic.countNfs(BLOCKED_STATUSES))
    })

    it('LOOKUP dot-dot is blocked', () => {
      const found = nfsEvents.some((event) => event.procedure === 'LOOKUP' && event.path === '/".."' && typeof event.blocked === 'string')
      expect(found).toBe(true)
    })

    it('forged GETATTR is blocked', () => {
      const found = nfsEvents.some((event) => event.procedure === 'GETATTR' && event.status === 'BADHANDLE' && String(event.blocked).includes('tag'))
      expect(found).toBe(true)
    })

    it('cross-volume RENAME is blocked', () => {
      const found = nfsEvents.some((event) => event.procedure === 'RENAME' && event.status === 'XDEV' && String(event.blocked).includes('cross-volume'))
      expect(found).toBe(true)
    })

    it('RENAME to parent is blocked', () => {
      const found = nfsEvents.some((event) => event.procedure === 'RENAME' && event.status === 'ACCES' && String(event.target).includes('..') && typeof event.blocked === 'string')
      expect(found).toBe(true)
    })

    it('MNT of parent is blocked', () => {
      const found = events.some((event) => event.procedure === 'MNT' && event.status === 'MNT3ERR_ACCES' && typeof event.blocked === 'string')
      expect(found).toBe(true)
    })

    it('every observed call was audited', () => {
      const observed = traffic.calls.filter((call: ObservedCall) => call.program === 'nfs').length
      expect(nfsEvents.length).toBe(observed)
    })
  })
})

// A host administrator (or another host process) moves a directory out of the volume while a
// client still has handles of it and of a file in it. From then on, the handles must not reach
// the moved objects, because they are outside the volume.
describe('directory moved out on the host', () => {
  const root = makeTempDir('aegis-moved-')
  const vol = path.join(root, 'vol')
  const movedOut = path.join(root, 'moved-out')
  const outsideToken = Buffer.from(`OUTSIDE-${randomBytes(12).toString('hex')}`)
  const traffic = new Traffic()

  let node: TestNode
  let client: Nfs3Client
  const linkedOut = path.join(root, 'linked-out.txt')
  let dirHandle: Buffer
  let fileHandle: Buffer
  let linkedHandle: Buffer

  beforeAll(async () => {
    fs.mkdirSync(vol)
    node = await startTestNode({ dataDir: path.join(root, 'data'), volumesYaml: hostPathVolumeYaml('hp', vol, 'read-write') })
    client = await connectObserved(node.port, traffic)
    const volumeRoot = await client.mount('/hp')
    dirHandle = await client.mkdirHandle(volumeRoot, 'moving')
    fileHandle = await client.writeFile(dirHandle, 'f.txt', 'inside data\n')
    linkedHandle = await client.writeFile(volumeRoot, 'linked.txt', 'inside data\n')

    fs.renameSync(path.join(vol, 'moving'), movedOut)
    fs.writeFileSync(path.join(movedOut, 'f.txt'), outsideToken)
    fs.writeFileSync(path.join(movedOut, 'host-new.txt'), 'created outside\n')

    // The same move done as a new name outside and the removal of the name inside.
    fs.linkSync(path.join(vol, 'linked.txt'), linkedOut)
    fs.unlinkSync(path.join(vol, 'linked.txt'))
    fs.writeFileSync(linkedOut, outsideToken)
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('READ of moved file leaks nothing', async () => {
    const result = await client.read(fileHandle, 0, 8192)
    expect(result.data?.includes(outsideToken) ?? false).toBe(false)
  })

  it('WRITE to moved file refused', async () => {
    await client.write(fileHandle, 0, Buffer.from('written from NFS'), StableHow.FILE_SYNC)
    expect(fs.readFileSync(path.join(movedOut, 'f.txt'))).toEqual(outsideToken)
  })

  it('CREATE in moved directory refused', async () => {
    await client.create(dirHandle, 'planted.txt')
    expect(fs.existsSync(path.join(movedOut, 'planted.txt'))).toBe(false)
  })

  it('READDIR of moved directory hides names', async () => {
    const result = await client.readdir(dirHandle, 0n, Buffer.alloc(8), 8192)
    const names = result.entries.map((entry) => entry.name)
    expect(names).not.toContain('host-new.txt')
  })

  it('GETATTR of moved directory is STALE', async () => {
    const result = await client.getattr(dirHandle)
    expect(result.status).toBe('STALE')
  })

  it('READ of file linked out leaks nothing', async () => {
    const result = await client.read(linkedHandle, 0, 8192)
    expect(result.data?.includes(outsideToken) ?? false).toBe(false)
  })

  it('WRITE to file linked out refused', async () => {
    await client.write(linkedHandle, 0, Buffer.from('written from NFS'), StableHow.FILE_SYNC)
    expect(fs.readFileSync(linkedOut)).toEqual(outsideToken)
  })
})

// A hostPath volume that contains the node's data directory would hand the handle key (and with it
// every handle of every volume) to its clients. The node must refuse to start, or at least never
// serve the key.
describe('hostPath over the data directory', () => {
  const root = makeTempDir('aegis-over-data-')
  const dataDir = path.join(root, 'data')
  let node: TestNode | null = null

  afterAll(async () => {
    await node?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('handle key unreadable through volume', async () => {
    try {
      node = await startTestNode({ dataDir, volumesYaml: hostPathVolumeYaml('all', root, 'read-write') })
    } catch {
      return // The node refused the configuration: nothing can be read.
    }
    const client = await Nfs3Client.connect(node.port)
    const volumeRoot = await client.mount('/all')
    const found = await client.lookup(await client.lookupHandle(volumeRoot, 'data'), 'handle.key')
    const read = found.handle === null ? null : await client.read(found.handle, 0, 64)
    client.close()
    expect(read?.data?.equals(fs.readFileSync(path.join(dataDir, 'handle.key'))) ?? false).toBe(false)
  })
})

// The same for an audit trail configured inside a hostPath volume: its clients could read every
// other client's paths, or rewrite the trail.
describe('hostPath containing the audit trail', () => {
  const root = makeTempDir('aegis-over-audit-')
  const shared = path.join(root, 'shared')
  const auditPath = path.join(shared, 'audit.jsonl')
  let node: TestNode | null = null

  afterAll(async () => {
    await node?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('audit trail unreadable through volume', async () => {
    fs.mkdirSync(shared)
    try {
      node = await startTestNode({
        dataDir: path.join(root, 'data'),
        nfsYaml: `audit:\n  path: ${auditPath}\n`,
        volumesYaml: hostPathVolumeYaml('shared', shared, 'read-write')
      })
    } catch {
      return // The node refused the configuration: nothing can be read.
    }
    const client = await Nfs3Client.connect(node.port)
    const volumeRoot = await client.mount('/shared')
    await client.getattr(volumeRoot)
    await new Promise((resolve) => setTimeout(resolve, 50)) // let the trail write its first events
    const found = await client.lookup(volumeRoot, 'audit.jsonl')
    const read = found.handle === null ? null : await client.read(found.handle, 0, 65536)
    client.close()
    expect(read?.data?.includes('"procedure"') ?? false).toBe(false)
  })
})
