// Shared helpers for the configuration tests: parse YAML the way a config file is parsed and
// capture the ConfigError it throws.

import { expect } from 'vitest'

import { ConfigError, parseConfigText } from '../../src/config/index.js'
import type { ConfigOverrides, NodeConfig } from '../../src/config/index.js'

export const source = '/etc/aegis/node.yaml'
export const baseDir = '/etc/aegis'

export function parse(text: string, overrides?: ConfigOverrides): NodeConfig {
  return parseConfigText(text, { source, baseDir, overrides })
}

/** Runs `action` and returns the ConfigError it throws; fails the test if it throws nothing else. */
export function catchConfigError(action: () => unknown): ConfigError {
  try {
    action()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError, but nothing was thrown')
}

/** Parses `text`, expecting a ConfigError on `field` whose message contains every fragment. */
export function expectConfigError(text: string, field: string, ...fragments: string[]): ConfigError {
  const error = catchConfigError(() => parse(text))
  expect(error.field).toBe(field)
  expect(error.message.startsWith(`${source}: ${field}: `)).toBe(true)
  for (const fragment of fragments) expect(error.message).toContain(fragment)
  return error
}

/**
 * Builds a file with one volume. `keys` holds YAML values as written in a file and replaces the
 * defaults (a local volume at /workspace/data, read-write); null removes a key.
 */
export function oneVolume(keys: Record<string, string | null> = {}, header = ''): string {
  const merged: Record<string, string | null> = {
    name: 'data',
    type: 'local',
    mount_path: '/workspace/data',
    access_mode: 'read-write',
    ...keys
  }
  const lines = Object.entries(merged)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([key, value]) => `    ${key}: ${value}`)
  lines[0] = '  - ' + lines[0].trimStart()
  return `${header}volumes:\n${lines.join('\n')}\n`
}
