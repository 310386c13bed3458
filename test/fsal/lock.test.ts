import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { SharedExclusiveLock } from '../../src/fsal/volume.js'

describe('shared/exclusive lock', () => {
  it('runs shared holders together', async () => {
    const lock = new SharedExclusiveLock()
    let running = 0
    let maxRunning = 0
    const holder = () =>
      lock.shared(async () => {
        running++
        maxRunning = Math.max(maxRunning, running)
        await sleep(10)
        running--
      })
    await Promise.all([holder(), holder(), holder()])
    expect(maxRunning).toBe(3)
  })

  it('runs an exclusive holder alone', async () => {
    const lock = new SharedExclusiveLock()
    const events: string[] = []
    const shared = (name: string) =>
      lock.shared(async () => {
        events.push(`${name} start`)
        await sleep(10)
        events.push(`${name} end`)
      })
    const first = shared('a')
    const exclusive = lock.exclusive(async () => {
      events.push('x start')
      await sleep(10)
      events.push('x end')
    })
    const last = shared('b')
    await Promise.all([first, exclusive, last])
    expect(events.indexOf('x start')).toBeGreaterThan(events.indexOf('a end'))
    expect(events.indexOf('b start')).toBeGreaterThan(events.indexOf('x end'))
  })

  it('releases after a failure', async () => {
    const lock = new SharedExclusiveLock()
    await expect(lock.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(await lock.exclusive(async () => 'next')).toBe('next')
  })
})
