// Names that backends tend to mangle: spaces, non-ASCII text, characters with a meaning in URLs,
// shells or object keys, and names at the length limit.

import { describe, expect } from 'vitest'
import type { DefineCase } from '../case.js'
import { expectBytes, expectFsalError } from '../harness.js'

/** Names that are valid on the wire (UTF-8, no "/" or NUL) and must reach the backend unchanged. */
export const SPECIAL_NAMES: readonly string[] = [
  'with space',
  ' leading and trailing ',
  'café é',
  '日本語のファイル',
  '😀 emoji 🎉',
  '?#%&',
  'a?b=c&d#e%20f',
  '100%',
  '%2F encoded slash',
  '%00 encoded nul',
  'a+b',
  'back\\slash',
  'quotes \' and "',
  '*star [brackets] {braces}',
  '<angle> |pipe| :colon;',
  '~tilde $dollar `tick`',
  '.hidden',
  '-dash',
  'tab\tinside',
  'line\nbreak'
]

/**
 * Names with "%" as other clients of a backend write them, such as a dataset put straight into a
 * bucket: a "%" before text that is no escape, one before two hex digits, one before a byte that is
 * not UTF-8 on its own, and "%25", which percent-decoding reads as "%".
 */
const FOREIGN_NAMES: readonly string[] = ['50%_off.csv', '100%41', 'bad%E2.txt', '%25']

function contentOf(name: string): Buffer {
  return Buffer.from(`content of ${JSON.stringify(name)}`)
}

export function nameCases(contractCase: DefineCase): void {
  describe('names', () => {
    contractCase('special names: create, list, read, rename', {}, async ({ fs }) => {
      for (const name of SPECIAL_NAMES) await fs.createWith(fs.root, name, contentOf(name))

      expect(await fs.list(fs.root), 'names listed').toEqual([...SPECIAL_NAMES].sort())
      for (const name of SPECIAL_NAMES) {
        const entry = await fs.lookup(fs.root, name)
        expectBytes(await fs.readAll(entry.handle), contentOf(name), `content of ${JSON.stringify(name)}`)
      }

      const renamed = SPECIAL_NAMES.map((name) => `${name} → ✓`)
      for (const [index, name] of SPECIAL_NAMES.entries()) await fs.rename(fs.root, name, fs.root, renamed[index])

      expect(await fs.list(fs.root), 'names listed after the renames').toEqual([...renamed].sort())
      for (const [index, name] of SPECIAL_NAMES.entries()) {
        const entry = await fs.lookup(fs.root, renamed[index])
        expectBytes(await fs.readAll(entry.handle), contentOf(name), `content of ${JSON.stringify(renamed[index])}`)
      }
    })

    contractCase('special names as directories', {}, async ({ fs }) => {
      for (const name of SPECIAL_NAMES) {
        const dir = await fs.mkdir(fs.root, name)
        await fs.createWith(dir.handle, name, contentOf(name))
      }

      expect(await fs.list(fs.root), 'directories listed').toEqual([...SPECIAL_NAMES].sort())
      for (const name of SPECIAL_NAMES) {
        const dir = await fs.lookup(fs.root, name)
        expect(dir.attributes.type, `type of ${JSON.stringify(name)}`).toBe('dir')
        expect(await fs.list(dir.handle), `entries of ${JSON.stringify(name)}`).toEqual([name])
        const file = await fs.lookupPath(name, name)
        expectBytes(await fs.readAll(file.handle), contentOf(name), `content of ${JSON.stringify(name)} inside itself`)
      }
    })

    contractCase('names of files written around the provider', { needs: ['inspect'] }, async ({ fs, inspect }) => {
      const dirName = FOREIGN_NAMES[0].replace('.csv', '')
      for (const name of FOREIGN_NAMES) await inspect.writeFile([name], contentOf(name))
      for (const name of FOREIGN_NAMES) await inspect.writeFile([dirName, name], contentOf(`${dirName}/${name}`))

      const listing = await fs.listPaged(fs.root, 1024)
      expect(listing.names.filter((name) => name !== '.' && name !== '..').sort(), 'names listed').toEqual([...FOREIGN_NAMES, dirName].sort())
      for (const name of FOREIGN_NAMES) {
        expect(listing.attributes.get(name)?.sizeBytes, `size of ${JSON.stringify(name)} in the listing`).toBe(contentOf(name).length)
        const entry = await fs.lookup(fs.root, name)
        expectBytes(await fs.readAll(entry.handle), contentOf(name), `content of ${JSON.stringify(name)}`)
      }

      const dir = await fs.lookup(fs.root, dirName)
      expect(await fs.list(dir.handle), `names listed in ${JSON.stringify(dirName)}`).toEqual([...FOREIGN_NAMES].sort())
      for (const name of FOREIGN_NAMES) {
        const entry = await fs.lookupPath(dirName, name)
        expectBytes(await fs.readAll(entry.handle), contentOf(`${dirName}/${name}`), `content of ${JSON.stringify(name)} in ${JSON.stringify(dirName)}`)
      }
    })

    contractCase('unicode normalization forms stay distinct', {}, async ({ fs }) => {
      const composed = 'caf\u00e9'
      const decomposed = 'cafe\u0301'
      await fs.createWith(fs.root, composed, contentOf(composed))
      await fs.createWith(fs.root, decomposed, contentOf(decomposed))

      expect(await fs.list(fs.root), 'names listed').toEqual([composed, decomposed].sort())
      expectBytes(await fs.readAll((await fs.lookup(fs.root, composed)).handle), contentOf(composed), 'content of the composed name')
      expectBytes(await fs.readAll((await fs.lookup(fs.root, decomposed)).handle), contentOf(decomposed), 'content of the decomposed name')
    })

    contractCase('names differing only in case stay distinct', {}, async ({ fs }) => {
      const names = ['README', 'Readme', 'readme']
      for (const name of names) await fs.createWith(fs.root, name, contentOf(name))

      expect(await fs.list(fs.root), 'names listed').toEqual(names)
      for (const name of names) {
        expectBytes(await fs.readAll((await fs.lookup(fs.root, name)).handle), contentOf(name), `content of ${name}`)
      }
    })

    contractCase('names of 255 bytes', {}, async ({ fs }) => {
      // 255 bytes each: one-byte, three-byte and four-byte UTF-8 characters (the emoji plus 3 ASCII).
      const names = ['a'.repeat(255), '日'.repeat(85), '😀'.repeat(63) + 'xyz']
      for (const name of names) expect(Buffer.byteLength(name), 'bytes in the name').toBe(255)
      for (const name of names) await fs.createWith(fs.root, name, contentOf(name))

      expect(await fs.list(fs.root), 'names listed').toEqual([...names].sort())
      for (const name of names) {
        expectBytes(await fs.readAll((await fs.lookup(fs.root, name)).handle), contentOf(name), `content of the ${name.slice(0, 1)} name`)
      }
      await expectFsalError(fs.create(fs.root, 'a'.repeat(256)), 'NAMETOOLONG')
    })
  })
}
