// The MOUNT program, version 3 (RFC 1813, appendix I): MNT, DUMP, UMNT, UMNTALL and EXPORT,
// including paths that try to leave an export.

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import type { Nfs3Client } from '../helpers/nfs3.js'
import { localVolumeYaml } from '../helpers/node.js'

const AUTH_SYS = 1

describe('mount', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client
  let volumeDir: string

  beforeAll(async () => {
    mounted = await startMounted({
      volumesYaml: localVolumeYaml('scratch') + localVolumeYaml('other') + localVolumeYaml('hidden', '    allowed_clients: ["10.0.0.0/8"]\n')
    })
    nfs = mounted.nfs
    volumeDir = path.join(mounted.node.dataDir, 'volumes', 'scratch')
    const sub = await nfs.mkdirHandle(mounted.root, 'sub')
    await nfs.mkdirHandle(sub, 'deeper')
    await nfs.writeFile(mounted.root, 'a-file', 'x')
    await nfs.symlink(mounted.root, 'link-to-etc', '/etc')
    await nfs.symlink(mounted.root, 'link-to-sub', 'sub')
  })
  afterAll(async () => mounted.stop())

  it('MNT export returns directory handle', async () => {
    const result = await nfs.mnt('/scratch')
    expect(result.status).toBe('OK')
    expect(result.handle?.length).toBeLessThanOrEqual(64)
    expect(result.authFlavors).toContain(AUTH_SYS)
    expect((await nfs.attributesOf(result.handle!)).type).toBe('DIR')
  })

  it('MNT of a subdirectory equals LOOKUP', async () => {
    const result = await nfs.mnt('/scratch/sub')
    expect(result.status).toBe('OK')
    expect(result.handle?.equals(await nfs.lookupHandle(mounted.root, 'sub'))).toBe(true)
  })

  it('MNT of a nested subdirectory equals LOOKUP', async () => {
    const result = await nfs.mnt('/scratch/sub/deeper')
    expect(result.handle?.equals(await nfs.lookupHandle(mounted.root, 'sub/deeper'))).toBe(true)
  })

  it('MNT of a missing export is NOENT', async () => {
    expect((await nfs.mnt('/nonexistent')).status).toBe('NOENT')
  })

  it('MNT of a missing subdirectory is NOENT', async () => {
    expect((await nfs.mnt('/scratch/missing')).status).toBe('NOENT')
  })

  it('MNT of a file is NOTDIR', async () => {
    expect((await nfs.mnt('/scratch/a-file')).status).toBe('NOTDIR')
  })

  it.each(['/scratch/../etc', '/scratch/..', '/scratch/sub/../..', '/../etc', '/', ''])('MNT of %j is refused', async (dirPath) => {
    const result = await nfs.mnt(dirPath)
    expect(result.status).not.toBe('OK')
    expect(result.handle).toBeNull()
  })

  it('MNT through a symlink is refused', async () => {
    expect((await nfs.mnt('/scratch/link-to-etc')).status).not.toBe('OK')
    expect((await nfs.mnt('/scratch/link-to-etc/ssh')).status).not.toBe('OK')
    expect((await nfs.mnt('/scratch/link-to-sub')).status).not.toBe('OK')
  })

  it('MNT of a disallowed volume is ACCES', async () => {
    expect((await nfs.mnt('/hidden')).status).toBe('ACCES')
  })

  it('EXPORT lists allowed volumes', async () => {
    const exports = await nfs.exports()
    const dirs = exports.map((entry) => entry.dir)
    expect(dirs).toContain('/scratch')
    expect(dirs).toContain('/other')
    expect(dirs).not.toContain('/hidden')
    expect(exports.find((entry) => entry.dir === '/scratch')?.groups).toContain('127.0.0.0/8')
  })

  it('DUMP tracks MNT and UMNT', async () => {
    await nfs.mount('/other')
    const afterMount = await nfs.dump()
    expect(afterMount).toContainEqual({ host: '127.0.0.1', dir: '/other' })

    await nfs.umnt('/other')
    const afterUnmount = await nfs.dump()
    expect(afterUnmount).not.toContainEqual({ host: '127.0.0.1', dir: '/other' })
  })

  it('UMNTALL clears every mount', async () => {
    await nfs.mount('/scratch')
    await nfs.mount('/scratch/sub')
    expect((await nfs.dump()).length).toBeGreaterThanOrEqual(2)
    await nfs.umntall()
    expect(await nfs.dump()).toEqual([])
  })

  it('failed MNT is not listed by DUMP', async () => {
    await nfs.umntall()
    await nfs.mnt('/nonexistent')
    expect(await nfs.dump()).toEqual([])
  })

  it('MNT never exposes host files', async () => {
    const result = await nfs.mnt('/scratch/../../../../etc')
    expect(result.status).not.toBe('OK')
    expect(fs.existsSync(path.join(volumeDir, 'etc'))).toBe(false)
  })
})
