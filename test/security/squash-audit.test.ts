// Ownership squashing (every object shows the volume's owner, and no client can change the owner
// on disk) and the audit trail (one complete StorageEvent per request, in a file only its owner
// can read).

import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decode, encode, Nfs3Client, Proc, StableHow } from '../helpers/nfs3.js'
import { hostPathVolumeYaml, localVolumeYaml, makeTempDir, startTestNode, type TestNode } from '../helpers/node.js'
import type { Credential } from '../helpers/rpc-client.js'

const OTHER_UID = 4321
/** A file name that would add a line to a trail that did not escape it. */
const INJECTED_NAME = 'line\n{"procedure":"FORGED"}'
const OTHER_GID = 4322

/** Fills `dir` with objects owned by root and by another user. */
function fillWithOwners(dir: string): void {
  fs.mkdirSync(path.join(dir, 'theirs-dir'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'root-file.txt'), 'root\n')
  fs.writeFileSync(path.join(dir, 'theirs.txt'), 'theirs\n')
  fs.symlinkSync('theirs.txt', path.join(dir, 'theirs-link'))
  fs.chownSync(path.join(dir, 'theirs.txt'), OTHER_UID, OTHER_GID)
  fs.chownSync(path.join(dir, 'theirs-dir'), OTHER_UID, OTHER_GID)
  fs.lchownSync(path.join(dir, 'theirs-link'), OTHER_UID, OTHER_GID)
}

describe('ownership squashing', () => {
  const base = makeTempDir('aegis-squash-')
  const defaultDir = path.join(base, 'default')
  const ownedDir = path.join(base, 'owned')
  let node: TestNode
  let client: Nfs3Client
  let defaultRoot: Buffer
  let ownedRoot: Buffer

  beforeAll(async () => {
    fillWithOwners(defaultDir)
    fillWithOwners(ownedDir)
    node = await startTestNode({
      dataDir: path.join(base, 'data'),
      volumesYaml:
        hostPathVolumeYaml('sq', defaultDir, 'read-write') +
        hostPathVolumeYaml('owned', ownedDir, 'read-write', '    owner: { uid: 1234, gid: 5678 }\n')
    })
    client = await Nfs3Client.connect(node.port)
    defaultRoot = await client.mount('/sq')
    ownedRoot = await client.mount('/owned')
  })

  afterAll(async () => {
    client?.close()
    await node?.stop()
    fs.rmSync(base, { recursive: true, force: true })
  })

  describe('attributes show the volume owner', () => {
    it.each(['root-file.txt', 'theirs.txt', 'theirs-dir', 'theirs-link'])('GETATTR %s shows 1000:1000', async (name) => {
      const attributes = await client.attributesOf(await client.lookupHandle(defaultRoot, name))
      expect([attributes.uid, attributes.gid]).toEqual([1000, 1000])
    })

    it('GETATTR of root shows 1000:1000', async () => {
      const attributes = await client.attributesOf(defaultRoot)
      expect([attributes.uid, attributes.gid]).toEqual([1000, 1000])
    })

    it('READDIRPLUS shows only 1000:1000', async () => {
      const { entries } = await client.listAll(defaultRoot, { plus: true })
      const owners = new Set(entries.map((entry) => `${entry.attributes?.uid}:${entry.attributes?.gid}`))
      expect([...owners]).toEqual(['1000:1000'])
    })

    it.each(['root-file.txt', 'theirs.txt', 'theirs-dir'])('configured owner for %s', async (name) => {
      const attributes = await client.attributesOf(await client.lookupHandle(ownedRoot, name))
      expect([attributes.uid, attributes.gid]).toEqual([1234, 5678])
    })

    it('READDIRPLUS shows configured owner', async () => {
      const { entries } = await client.listAll(ownedRoot, { plus: true })
      const owners = new Set(entries.map((entry) => `${entry.attributes?.uid}:${entry.attributes?.gid}`))
      expect([...owners]).toEqual(['1234:5678'])
    })

    it('LOOKUP attributes show owner', async () => {
      const found = await client.lookup(ownedRoot, 'theirs.txt')
      expect([found.attributes?.uid, found.attributes?.gid]).toEqual([1234, 5678])
    })

    it('owner does not follow credential', async () => {
      const credentials: Credential[] = [
        { flavor: 1, uid: 0, gid: 0 },
        { flavor: 1, uid: OTHER_UID, gid: OTHER_GID },
        { flavor: 0 }
      ]
      const handle = await client.lookupHandle(defaultRoot, 'theirs.txt')
      const owners = new Set<string>()
      for (const credential of credentials) {
        const result = await client.getattr(handle, { credential })
        owners.add(`${result.attributes?.uid}:${result.attributes?.gid}`)
      }
      expect([...owners]).toEqual(['1000:1000'])
    })

    it('WRITE reply shows owner', async () => {
      const created = await client.create(defaultRoot, 'mine.txt', { mode: 'unchecked' }, { credential: { flavor: 1, uid: OTHER_UID, gid: OTHER_GID } })
      const written = await client.write(created.handle!, 0, Buffer.from('mine'), StableHow.FILE_SYNC)
      expect([written.wcc.after?.uid, written.wcc.after?.gid]).toEqual([1000, 1000])
    })

    it('created file is not the caller’s', () => {
      expect(fs.statSync(path.join(defaultDir, 'mine.txt')).uid).not.toBe(OTHER_UID)
    })
  })

  describe('ownership changes', () => {
    it('SETATTR uid 0 is PERM', async () => {
      const result = await client.setattr(await client.lookupHandle(defaultRoot, 'theirs.txt'), { uid: 0 })
      expect(result.status).toBe('PERM')
    })

    it('SETATTR gid 0 is PERM', async () => {
      const result = await client.setattr(await client.lookupHandle(defaultRoot, 'theirs.txt'), { gid: 0 })
      expect(result.status).toBe('PERM')
    })

    it('refused SETATTR changes no mode', async () => {
      const before = fs.statSync(path.join(defaultDir, 'theirs.txt')).mode
      await client.setattr(await client.lookupHandle(defaultRoot, 'theirs.txt'), { uid: 0, mode: 0o4777 })
      expect(fs.statSync(path.join(defaultDir, 'theirs.txt')).mode).toBe(before)
    })

    it('SETATTR directory uid 0 is PERM', async () => {
      const result = await client.setattr(await client.lookupHandle(defaultRoot, 'theirs-dir'), { uid: 0, gid: 0 })
      expect(result.status).toBe('PERM')
    })

    it('SETATTR to another uid is PERM', async () => {
      const result = await client.setattr(await client.lookupHandle(ownedRoot, 'theirs.txt'), { uid: 1000 })
      expect(result.status).toBe('PERM')
    })

    it('host owner unchanged after refusals', () => {
      const stat = fs.statSync(path.join(defaultDir, 'theirs.txt'))
      expect([stat.uid, stat.gid]).toEqual([OTHER_UID, OTHER_GID])
    })

    it('SETATTR to the shown owner is OK', async () => {
      const result = await client.setattr(await client.lookupHandle(defaultRoot, 'theirs.txt'), { uid: 1000, gid: 1000 })
      expect(result.status).toBe('OK')
    })

    it('accepted SETATTR did not chown', () => {
      const stat = fs.statSync(path.join(defaultDir, 'theirs.txt'))
      expect([stat.uid, stat.gid]).toEqual([OTHER_UID, OTHER_GID])
    })

    it('CREATE owned by root is PERM', async () => {
      const result = await client.create(defaultRoot, 'root-owned.txt', { mode: 'unchecked', attributes: { uid: 0 } })
      expect(result.status).toBe('PERM')
    })

    it('refused CREATE left no file', () => {
      expect(fs.existsSync(path.join(defaultDir, 'root-owned.txt'))).toBe(false)
    })

    it('MKDIR with group 0 is PERM', async () => {
      const result = await client.mkdir(defaultRoot, 'root-group', { gid: 0 })
      expect(result.status).toBe('PERM')
    })

    it('refused MKDIR left no directory', () => {
      expect(fs.existsSync(path.join(defaultDir, 'root-group'))).toBe(false)
    })

    it('SETATTR cannot set setuid', async () => {
      await client.setattr(await client.lookupHandle(defaultRoot, 'mine.txt'), { mode: 0o4755 })
      expect(fs.statSync(path.join(defaultDir, 'mine.txt')).mode & 0o6000).toBe(0)
    })

    it('SETATTR cannot set setgid', async () => {
      await client.setattr(await client.lookupHandle(defaultRoot, 'mine.txt'), { mode: 0o2755 })
      expect(fs.statSync(path.join(defaultDir, 'mine.txt')).mode & 0o6000).toBe(0)
    })

    it('CREATE cannot set setuid', async () => {
      await client.create(defaultRoot, 'suid.bin', { mode: 'unchecked', attributes: { mode: 0o6755 } })
      const mode = fs.existsSync(path.join(defaultDir, 'suid.bin')) ? fs.statSync(path.join(defaultDir, 'suid.bin')).mode : 0
      expect(mode & 0o6000).toBe(0)
    })

    it('SYMLINK owned by root is PERM', async () => {
      const result = await client.symlink(defaultRoot, 'root-link', 'theirs.txt', { uid: 0 })
      expect(result.status).toBe('PERM')
    })
  })
})

describe('audit trail', () => {
  const dataDir = makeTempDir('aegis-audit-')
  const credential: Credential = { flavor: 1, uid: 4242, gid: 4343, machineName: 'agent-7' }
  const expected: Array<{ procedure: string; status: string }> = []
  let node: TestNode
  let startedAt: number
  let stoppedAt: number
  let events: Array<Record<string, unknown>>
  let auditMode: number

  /** Events of one procedure, in order. */
  function eventsOf(procedure: string): Array<Record<string, unknown>> {
    return events.filter((event) => event.procedure === procedure)
  }

  beforeAll(async () => {
    startedAt = Date.now()
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('au') })
    const client = await Nfs3Client.connect(node.port)
    client.rpc.credential = credential
    const note = (procedure: string, status: string): void => {
      expected.push({ procedure, status })
    }

    const root = await client.mount('/au')
    note('MNT', 'OK')
    await client.null()
    note('NULL', 'OK')
    note('GETATTR', (await client.getattr(root)).status)
    const created = await client.create(root, 'f.txt', { mode: 'guarded' })
    note('CREATE', created.status)
    note('WRITE', (await client.write(created.handle!, 0, Buffer.from('hello'), StableHow.FILE_SYNC)).status)
    note('READ', (await client.read(created.handle!, 0, 100)).status)
    note('READ', (await client.read(created.handle!, 3, 2)).status)
    note('LOOKUP', (await client.lookup(root, 'missing')).status)
    note('LOOKUP', (await client.lookup(root, '..')).status)
    note('SETATTR', (await client.setattr(created.handle!, { uid: 0 })).status)
    note('GETATTR', (await client.getattr(Buffer.alloc(38))).status)
    await client.lookup(root, 'n'.repeat(2000)).catch(() => undefined)
    note('LOOKUP', 'GARBAGE_ARGS')
    note('READDIR', (await client.readdir(root, 0n, Buffer.alloc(8), 8192)).status)
    note('FSSTAT', (await client.fsstat(root)).status)
    note('COMMIT', (await client.commit(created.handle!)).status)
    note('CREATE', (await client.create(root, INJECTED_NAME, { mode: 'guarded' })).status)

    // A retransmission (same xid, same arguments) of a non-idempotent call is the same request.
    const xid = client.rpc.newXid()
    const first = decode.dirop((await client.callNfs(Proc.CREATE, encode.create(root, 'dup.txt', { mode: 'guarded' }), { xid })).body)
    note('CREATE', first.status)
    await client.callNfs(Proc.CREATE, encode.create(root, 'dup.txt', { mode: 'guarded' }), { xid })

    // Pipelined calls: all sent before any reply is read.
    const pipelined = await Promise.all(Array.from({ length: 200 }, () => client.getattr(root)))
    for (const result of pipelined) note('GETATTR', result.status)

    note('REMOVE', (await client.remove(root, 'f.txt')).status)
    await client.umnt('/au')
    note('UMNT', 'OK')
    client.close()

    auditMode = fs.statSync(node.auditPath).mode & 0o777
    await node.stop()
    stoppedAt = Date.now()
    events = node.auditEvents()
  })

  afterAll(async () => {
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('one event per request', () => {
    expect(events.length).toBe(expected.length)
  })

  it('events follow the requests', () => {
    expect(events.map((event) => `${event.procedure} ${event.status}`)).toEqual(expected.map((call) => `${call.procedure} ${call.status}`))
  })

  it('times are within the run', () => {
    const outside = events.filter((event) => {
      const time = Date.parse(String(event.time))
      return !(time >= startedAt && time <= stoppedAt)
    })
    expect(outside).toEqual([])
  })

  it('node name is recorded', () => {
    expect(new Set(events.map((event) => event.node))).toEqual(new Set(['test-node']))
  })

  it('client address is recorded', () => {
    expect(new Set(events.map((event) => event.client))).toEqual(new Set(['127.0.0.1']))
  })

  it('credential uid is recorded', () => {
    expect(new Set(events.map((event) => event.uid))).toEqual(new Set([4242]))
  })

  it('credential gid is recorded', () => {
    expect(new Set(events.map((event) => event.gid))).toEqual(new Set([4343]))
  })

  it('durations are whole microseconds', () => {
    const bad = events.filter((event) => !Number.isInteger(event.durationUs) || (event.durationUs as number) < 0)
    expect(bad).toEqual([])
  })

  it('volume recorded for volume calls', () => {
    const volumes = new Set(events.filter((event) => !['NULL', 'UMNT'].includes(String(event.procedure)) && event.status !== 'BADHANDLE' && event.status !== 'GARBAGE_ARGS').map((event) => event.volume))
    expect(volumes).toEqual(new Set(['au']))
  })

  it('CREATE path is recorded', () => {
    expect(eventsOf('CREATE')[0].path).toBe('/f.txt')
  })

  it('WRITE offset, length and bytes', () => {
    const write = eventsOf('WRITE')[0]
    expect({ path: write.path, offset: write.offset, length: write.length, bytes: write.bytes }).toEqual({ path: '/f.txt', offset: 0, length: 5, bytes: 5 })
  })

  it('READ at start records bytes read', () => {
    const read = eventsOf('READ')[0]
    expect({ path: read.path, offset: read.offset, length: read.length, bytes: read.bytes }).toEqual({ path: '/f.txt', offset: 0, length: 100, bytes: 5 })
  })

  it('READ at offset records bytes read', () => {
    const read = eventsOf('READ')[1]
    expect({ offset: read.offset, length: read.length, bytes: read.bytes }).toEqual({ offset: 3, length: 2, bytes: 2 })
  })

  it('name with newline is one event', () => {
    expect(eventsOf('CREATE')[1].path).toBe(`/${INJECTED_NAME}`)
  })

  it('refused SETATTR is recorded', () => {
    const setattr = eventsOf('SETATTR')[0]
    expect({ path: setattr.path, status: setattr.status }).toEqual({ path: '/f.txt', status: 'PERM' })
  })

  it('forged handle is marked blocked', () => {
    const forged = events.find((event) => event.status === 'BADHANDLE')
    expect(typeof forged?.blocked).toBe('string')
  })

  it('LOOKUP of dot-dot is marked blocked', () => {
    const lookup = events.find((event) => event.procedure === 'LOOKUP' && event.status === 'ACCES')
    expect(typeof lookup?.blocked).toBe('string')
  })

  it('audit file is mode 0600', () => {
    expect(auditMode).toBe(0o600)
  })
})

describe('audit file created by someone else', () => {
  const dataDir = makeTempDir('aegis-audit-mode-')
  const auditPath = path.join(dataDir, 'audit.jsonl')
  let node: TestNode

  beforeAll(async () => {
    fs.writeFileSync(auditPath, '', { mode: 0o644 })
    fs.chmodSync(auditPath, 0o644)
    node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('au') })
  })

  afterAll(async () => {
    await node?.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('start makes it mode 0600', () => {
    expect(fs.statSync(auditPath).mode & 0o777).toBe(0o600)
  })
})

describe('handle key permissions', () => {
  const dataDir = makeTempDir('aegis-key-')

  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it('new key is mode 0600', async () => {
    const node = await startTestNode({ dataDir, volumesYaml: localVolumeYaml('k') })
    await node.stop()
    expect(fs.statSync(path.join(dataDir, 'handle.key')).mode & 0o777).toBe(0o600)
  })

  it('group-readable key stops start', async () => {
    fs.chmodSync(path.join(dataDir, 'handle.key'), 0o640)
    await expect(startTestNode({ dataDir, volumesYaml: localVolumeYaml('k') })).rejects.toThrow(/chmod 600/)
  })
})
