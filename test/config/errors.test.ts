import { describe, expect, it } from 'vitest'

import { ConfigError } from '../../src/config/index.js'

describe('ConfigError', () => {
  it('formats source, field, detail', () => {
    const error = new ConfigError({ source: 'node.yaml', field: 'nfs.port', detail: '"abc" is not a port; use 2049' })
    expect(error.message).toBe('node.yaml: nfs.port: "abc" is not a port; use 2049')
    expect(error.name).toBe('ConfigError')
    expect(error).toBeInstanceOf(Error)
    expect(error.source).toBe('node.yaml')
    expect(error.field).toBe('nfs.port')
    expect(error.line).toBeNull()
  })

  it('omits empty field', () => {
    const error = new ConfigError({ source: 'node.yaml', field: '', detail: 'config file not found; check the path', line: 3 })
    expect(error.message).toBe('node.yaml: config file not found; check the path')
    expect(error.line).toBe(3)
  })

  it('omits missing source', () => {
    const error = new ConfigError({ field: 'size_limit', detail: '"x" is not a valid size' })
    expect(error.message).toBe('size_limit: "x" is not a valid size')
    expect(error.source).toBeNull()
  })
})
