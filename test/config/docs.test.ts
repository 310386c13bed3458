import { readFile } from 'node:fs/promises'

import { describe, expect, it } from 'vitest'

import { embeddedDefaultYaml } from '../../src/config/index.js'
import { parse } from './helpers.js'

const referencePath = new URL('../../docs/configuration.md', import.meta.url)

async function yamlBlocks(): Promise<string[]> {
  const text = await readFile(referencePath, 'utf8')
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1])
}

describe('configuration reference', () => {
  it('example parses', async () => {
    const [example] = await yamlBlocks()
    const config = parse(example)
    expect(config.volumes.map((volume) => volume.type)).toEqual(['local', 'seaweedfs', 'opendal', 'hostPath', 'seal'])
    expect(config.nfs.advertiseHost).toBe('storage-node-1.internal')
    expect(config.secrets.vault?.auth.method).toBe('approle')
  })

  it('shows the embedded default', async () => {
    expect(await yamlBlocks()).toContain(embeddedDefaultYaml)
  })
})

describe('README', () => {
  it('configuration example parses', async () => {
    const text = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const example = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]).find((block) => block.includes('volumes:'))
    expect(example).toBeDefined()
    const config = parse(example!)
    expect(config.volumes.map((volume) => volume.type)).toEqual(['hostPath', 'local', 'opendal'])
    expect(config.secrets.vault?.address).toBe('https://bao.internal:8200')
  })
})
