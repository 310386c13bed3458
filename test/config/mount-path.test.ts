import { describe, expect, it } from 'vitest'

import { pathsOverlap } from '../../src/config/paths.js'
import { expectConfigError, oneVolume, parse } from './helpers.js'

describe('mount_path', () => {
  it.each(['/workspace/a', '/workspace/a/b/c', '/workspace/a.b', '/workspace/with space', '/workspace/...'])('accepts %s', (path) => {
    expect(parse(oneVolume({ mount_path: JSON.stringify(path) })).volumes[0].mountPath).toBe(path)
  })

  const invalid: Array<[string, string]> = [
    ['workspace/a', 'is not an absolute path'],
    ['/workspace', 'is the workspace root itself'],
    ['/workspace/', 'remove the trailing slash'],
    ['/workspace/a/', 'remove the trailing slash'],
    ['/workspace//a', 'empty segment'],
    ['/workspace/./a', '"." or ".." segment'],
    ['/workspace/a/..', '"." or ".." segment'],
    ['/workspace/../etc', '"." or ".." segment'],
    ['/workspacex/a', 'is outside /workspace'],
    ['/data', 'is outside /workspace'],
    ['/', 'is outside /workspace'],
    ['/Workspace/a', 'is outside /workspace']
  ]
  it.each(invalid)('rejects %s', (path, reason) => {
    expectConfigError(oneVolume({ mount_path: JSON.stringify(path) }), 'volumes[0].mount_path', JSON.stringify(path), reason)
  })

  it('rejects NUL', () => {
    expectConfigError(oneVolume({ mount_path: '"/workspace/a\\0b"' }), 'volumes[0].mount_path', '"/workspace/a\\u0000b"', 'control character')
  })

  it('rejects missing', () => {
    expectConfigError(oneVolume({ mount_path: null }), 'volumes[0].mount_path', 'missing')
  })

  it('rejects a number', () => {
    expectConfigError(oneVolume({ mount_path: '5' }), 'volumes[0].mount_path', 'got the number 5')
  })
})

describe('mount path overlap', () => {
  const cases: Array<[string, string, boolean]> = [
    ['/workspace/a', '/workspace/a', true],
    ['/workspace/a', '/workspace/a/b', true],
    ['/workspace/a/b', '/workspace/a', true],
    ['/workspace/x', '/workspace/x/y/z', true],
    ['/workspace/a', '/workspace/ab', false],
    ['/workspace/ab', '/workspace/a', false],
    ['/workspace/a/b', '/workspace/a/c', false],
    ['/workspace/a', '/workspace/a.b', false],
    ['/workspace/a-b', '/workspace/a', false],
    ['/workspace/pipeline/input', '/workspace/pipeline/output', false]
  ]

  it.each(cases)('pathsOverlap(%s, %s)', (a, b, overlap) => {
    expect(pathsOverlap(a, b)).toBe(overlap)
  })

  const twoVolumes = (first: string, second: string) => `volumes:
  - name: first
    type: local
    mount_path: ${first}
    access_mode: read-write
  - name: second
    type: local
    mount_path: ${second}
    access_mode: read-only
`

  it.each(cases)('config with %s and %s', (a, b, overlap) => {
    const text = twoVolumes(a, b)
    if (overlap) {
      expectConfigError(text, 'volumes[1].mount_path', `"${b}" of volume "second" (volumes[1])`, `"${a}" of volume "first" (volumes[0])`)
    } else {
      expect(parse(text).volumes.map((volume) => volume.mountPath)).toEqual([a, b])
    }
  })

  it('says which one is inside', () => {
    expectConfigError(twoVolumes('/workspace/a', '/workspace/a/b'), 'volumes[1].mount_path', 'is inside')
    expectConfigError(twoVolumes('/workspace/a/b', '/workspace/a'), 'volumes[1].mount_path', 'contains')
    expectConfigError(twoVolumes('/workspace/a', '/workspace/a'), 'volumes[1].mount_path', 'is the same as')
  })
})
