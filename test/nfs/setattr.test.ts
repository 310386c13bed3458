// SETATTR (RFC 1813, section 3.3.2): size, mode, times, the ctime guard and ownership.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMounted, type MountedNode } from '../helpers/nfs-fixture.js'
import { type Nfs3Client, nfsStatusName, Proc } from '../helpers/nfs3.js'
import { localVolumeYaml } from '../helpers/node.js'

describe('setattr', () => {
  let mounted: MountedNode
  let nfs: Nfs3Client

  beforeAll(async () => {
    mounted = await startMounted()
    nfs = mounted.nfs
  })
  afterAll(async () => mounted.stop())

  it('truncate to a smaller size', async () => {
    const data = Buffer.from('0123456789'.repeat(100))
    const handle = await nfs.writeFile(mounted.root, 'shrink', data)
    const result = await nfs.setattr(handle, { size: 100 })
    expect(result.status).toBe('OK')
    expect(result.wcc.before?.size).toBe(1000)
    expect(result.wcc.after?.size).toBe(100)
    expect((await nfs.attributesOf(handle)).size).toBe(100)
    expect((await nfs.readFile(handle)).equals(data.subarray(0, 100))).toBe(true)
  })

  it('extend fills with zeros', async () => {
    const handle = await nfs.writeFile(mounted.root, 'grow', 'abc')
    expect((await nfs.setattr(handle, { size: 5000 })).status).toBe('OK')
    const data = await nfs.readFile(handle)
    expect(data.length).toBe(5000)
    expect(data.subarray(0, 3).toString()).toBe('abc')
    expect(data.subarray(3).every((byte) => byte === 0)).toBe(true)
  })

  it('mode change reads back', async () => {
    const handle = await nfs.writeFile(mounted.root, 'mode')
    expect((await nfs.setattr(handle, { mode: 0o640 })).status).toBe('OK')
    expect((await nfs.attributesOf(handle)).mode.toString(8)).toBe('640')
  })

  it('directory mode change reads back', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'mode-dir')
    expect((await nfs.setattr(dir, { mode: 0o711 })).status).toBe('OK')
    expect((await nfs.attributesOf(dir)).mode.toString(8)).toBe('711')
  })

  it('client times keep nanoseconds', async () => {
    const handle = await nfs.writeFile(mounted.root, 'times')
    const atime = { sec: 1_600_000_000, nsec: 123_456_789 }
    const mtime = { sec: 1_500_000_000, nsec: 987_654_321 }
    expect((await nfs.setattr(handle, { atime, mtime })).status).toBe('OK')
    const attributes = await nfs.attributesOf(handle)
    expect(attributes.atime).toEqual(atime)
    expect(attributes.mtime).toEqual(mtime)
  })

  it('mtime alone leaves atime', async () => {
    const handle = await nfs.writeFile(mounted.root, 'mtime-only')
    const atime = { sec: 1_400_000_000, nsec: 5 }
    await nfs.setattr(handle, { atime, mtime: { sec: 1_400_000_000, nsec: 6 } })
    expect((await nfs.setattr(handle, { mtime: { sec: 1_450_000_000, nsec: 7 } })).status).toBe('OK')
    const attributes = await nfs.attributesOf(handle)
    expect(attributes.atime).toEqual(atime)
    expect(attributes.mtime).toEqual({ sec: 1_450_000_000, nsec: 7 })
  })

  it('SET_TO_SERVER_TIME uses the clock', async () => {
    const handle = await nfs.writeFile(mounted.root, 'server-time')
    await nfs.setattr(handle, { atime: { sec: 1_000_000_000, nsec: 0 }, mtime: { sec: 1_000_000_000, nsec: 0 } })
    const now = Date.now() / 1000
    expect((await nfs.setattr(handle, { atime: 'server', mtime: 'server' })).status).toBe('OK')
    const attributes = await nfs.attributesOf(handle)
    expect(Math.abs(attributes.mtime.sec - now)).toBeLessThan(10)
    expect(Math.abs(attributes.atime.sec - now)).toBeLessThan(10)
  })

  it('guard with current ctime succeeds', async () => {
    const handle = await nfs.writeFile(mounted.root, 'guard-ok')
    const { ctime } = await nfs.attributesOf(handle)
    const result = await nfs.setattr(handle, { mode: 0o600 }, ctime)
    expect(result.status).toBe('OK')
    expect((await nfs.attributesOf(handle)).mode.toString(8)).toBe('600')
  })

  it('guard with stale ctime is NOT_SYNC', async () => {
    const handle = await nfs.writeFile(mounted.root, 'guard-stale', 'twelve bytes')
    await nfs.setattr(handle, { mode: 0o644 })
    const before = await nfs.attributesOf(handle)
    const stale = { sec: before.ctime.sec - 100, nsec: before.ctime.nsec }
    const result = await nfs.setattr(handle, { mode: 0o600, size: 0 }, stale)
    expect(result.status).toBe('NOT_SYNC')
    const after = await nfs.attributesOf(handle)
    expect(after.mode.toString(8)).toBe('644')
    expect(after.size).toBe(12)
    expect(after.ctime).toEqual(before.ctime)
  })

  it('chown to another uid is PERM', async () => {
    const handle = await nfs.writeFile(mounted.root, 'chown-other')
    const result = await nfs.setattr(handle, { uid: 0 })
    expect(result.status).toBe('PERM')
    expect((await nfs.attributesOf(handle)).uid).toBe(1000)
  })

  it('chgrp to another gid is PERM', async () => {
    const handle = await nfs.writeFile(mounted.root, 'chgrp-other')
    expect((await nfs.setattr(handle, { gid: 4242 })).status).toBe('PERM')
  })

  it('chown to the volume owner is OK', async () => {
    const handle = await nfs.writeFile(mounted.root, 'chown-owner')
    const result = await nfs.setattr(handle, { uid: 1000, gid: 1000 })
    expect(result.status).toBe('OK')
    const attributes = await nfs.attributesOf(handle)
    expect(attributes.uid).toBe(1000)
    expect(attributes.gid).toBe(1000)
  })

  it('failed chown changes nothing else', async () => {
    const handle = await nfs.writeFile(mounted.root, 'chown-mixed', 'keep')
    await nfs.setattr(handle, { mode: 0o644 })
    const result = await nfs.setattr(handle, { uid: 0, mode: 0o600, size: 0 })
    expect(result.status).toBe('PERM')
    const attributes = await nfs.attributesOf(handle)
    expect(attributes.mode.toString(8)).toBe('644')
    expect(attributes.size).toBe(4)
  })

  it('size of a directory is refused', async () => {
    const dir = await nfs.mkdirHandle(mounted.root, 'sized-dir')
    const result = await nfs.setattr(dir, { size: 0 })
    expect(['ISDIR', 'INVAL']).toContain(result.status)
  })

  it('size above 2^53 is FBIG', async () => {
    const handle = await nfs.writeFile(mounted.root, 'huge-size', 'small')
    const reply = await nfs.callNfs(Proc.SETATTR, (w) => {
      w.opaque(handle)
      w.bool(false) // mode
      w.bool(false) // uid
      w.bool(false) // gid
      w.bool(true) // size
      w.u64big(1n << 60n)
      w.u32(0) // atime: DONT_CHANGE
      w.u32(0) // mtime: DONT_CHANGE
      w.bool(false) // no guard
    })
    expect(['FBIG', 'INVAL', 'NOSPC', 'DQUOT']).toContain(nfsStatusName(reply.body.u32()))
    expect((await nfs.attributesOf(handle)).size).toBe(5)
  })

  it('SETATTR of a removed file is STALE', async () => {
    const handle = await nfs.writeFile(mounted.root, 'removed-then-set')
    expect((await nfs.remove(mounted.root, 'removed-then-set')).status).toBe('OK')
    expect((await nfs.setattr(handle, { mode: 0o600 })).status).toBe('STALE')
  })
})

describe('setattr owner', () => {
  it('reports and accepts the configured owner', async () => {
    const mounted = await startMounted({ volumesYaml: localVolumeYaml('owned', '    owner: { uid: 2000, gid: 3000 }\n'), mountPath: '/owned' })
    try {
      const handle = await mounted.nfs.writeFile(mounted.root, 'file')
      const attributes = await mounted.nfs.attributesOf(handle)
      expect(attributes.uid).toBe(2000)
      expect(attributes.gid).toBe(3000)
      expect((await mounted.nfs.setattr(handle, { uid: 2000, gid: 3000 })).status).toBe('OK')
      expect((await mounted.nfs.setattr(handle, { uid: 1000 })).status).toBe('PERM')
    } finally {
      await mounted.stop()
    }
  })
})
