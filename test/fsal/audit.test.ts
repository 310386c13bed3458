import fs from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { AuditSink, serializeEvent, type StorageEvent } from '../../src/fsal/audit.js'
import { makeTempDir } from '../helpers/node.js'

function event(index: number, extra: Partial<StorageEvent> = {}): StorageEvent {
  return {
    time: new Date(0).toISOString(),
    node: 'n1',
    volume: 'v',
    client: '127.0.0.1',
    uid: 1000,
    gid: 1000,
    procedure: 'WRITE',
    path: `/file-${index} "quoted" \u00e9`,
    target: null,
    offset: index,
    length: 10,
    bytes: 10,
    status: 'OK',
    durationUs: 5,
    ...extra
  }
}

/** Collects what the sink logs, to check what it reports. */
function capturingLogger(): { logger: pino.Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) })
  return { logger, records }
}

describe('audit sink', () => {
  it('serializes like JSON.stringify', () => {
    const withBlocked = event(1, { blocked: 'name ".." is not a single component', volume: null, offset: null })
    expect(serializeEvent(withBlocked)).toBe(JSON.stringify(withBlocked) + '\n')
    expect(serializeEvent(event(2))).toBe(JSON.stringify(event(2)) + '\n')
  })

  it('writes every event in order', async () => {
    const file = path.join(makeTempDir(), 'audit/audit.jsonl')
    const sink = new AuditSink(file, 1000, capturingLogger().logger)
    await sink.open()
    for (let i = 0; i < 5000; i++) await sink.record(event(i))
    await sink.close()
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(5000)
    expect((JSON.parse(lines[4999]) as StorageEvent).offset).toBe(4999)
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
  })

  it('makes callers wait when full', async () => {
    const file = path.join(makeTempDir(), 'audit.jsonl')
    const sink = new AuditSink(file, 4, capturingLogger().logger)
    await sink.open()
    const waits = [0, 1, 2, 3, 4].map((i) => sink.record(event(i)))
    expect(waits.slice(0, 3).every((wait) => wait === undefined)).toBe(true)
    expect(waits[3]).toBeInstanceOf(Promise)
    await waits[3]
    expect(sink.stats().pending).toBeLessThan(4)
    await sink.close()
    expect(sink.stats().written).toBe(5)
  })

  it('counts and logs lost events', async () => {
    const { logger, records } = capturingLogger()
    // Writes to /dev/full fail with ENOSPC, as a full audit disk would.
    const sink = new AuditSink('/dev/full', 100, logger)
    await sink.open()
    for (let i = 0; i < 10; i++) sink.record(event(i))
    await sink.close().catch(() => {})
    expect(sink.stats().dropped).toBe(10)
    const lost = records.find((record) => record.msg === 'audit events could not be written and are lost')
    expect(lost?.droppedTotal).toBe(10)
  })
})
