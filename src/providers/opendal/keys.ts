// Object keys of an OpenDAL volume. OpenDAL (0.49) trims white space at both ends of every path,
// as Rust's str::trim does (Unicode White_Space), and its fs service lists a file whose name
// contains "\" as if "\" were "/". A name therefore becomes a key component with escapes, each
// %XX per UTF-8 byte with upper-case hex digits:
// - "\" becomes %5C.
// - White space at the start and at the end of the name is escaped, every character of both runs.
// - "%" becomes %25 only where decodeName would otherwise read an escape starting at that "%".
// decodeName reads %5C anywhere, and white space escapes only in the run that starts or ends the
// component. When a literal white space character is next to such a run, the escape beside it is
// read literally, because encodeName never writes a run that way. decodeName reads %25 as "%"
// exactly where a literal "%" would start an escape. Every other character is literal.
// So a name without "%", "\" and white space at its ends is its own key component. An object that
// another client wrote shows with its key component as its name, unless no name has that
// component (see nameOfListedKey).
//
// A node's path in the volume (node.path() without its leading "/") contains the names
// unescaped. Only keys are escaped. Directory keys end with "/", the root's key is "/".

const WHITE_SPACE = /^\p{White_Space}$/u
const ESCAPES = /^(?:%[0-9A-F]{2})+$/
/** Lengths of the escapes of one white space character: U+0009 to U+3000 take 1 to 3 UTF-8 bytes. */
const WHITE_SPACE_ESCAPE_LENGTHS = [3, 6, 9]

function percentEncode(text: string): string {
  let encoded = ''
  for (const byte of Buffer.from(text, 'utf8')) encoded += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  return encoded
}

/** Returns the white space character that `escapes` (such as "%E3%80%80") encode, or null. */
function whiteSpaceOf(escapes: string): string | null {
  if (!ESCAPES.test(escapes)) return null
  const character = Buffer.from(escapes.replaceAll('%', ''), 'hex').toString('utf8')
  // The second check rejects bytes that are not UTF-8, which toString turns into U+FFFD.
  return WHITE_SPACE.test(character) && percentEncode(character) === escapes ? character : null
}

/** Returns the length of the white space escape that starts at `index`, or 0. */
function whiteSpaceEscapeAt(key: string, index: number): number {
  return WHITE_SPACE_ESCAPE_LENGTHS.find((length) => whiteSpaceOf(key.slice(index, index + length)) !== null) ?? 0
}

/** Returns the length of the white space escape that ends at `end` and starts at `floor` or later, or 0. */
function whiteSpaceEscapeBefore(key: string, end: number, floor: number): number {
  return WHITE_SPACE_ESCAPE_LENGTHS.find((length) => end - length >= floor && whiteSpaceOf(key.slice(end - length, end)) !== null) ?? 0
}

function isLiteralWhiteSpace(key: string, index: number): boolean {
  return index >= 0 && index < key.length && WHITE_SPACE.test(key[index])
}

/** The runs of a key component that decodeName reads as white space: [0, startRunEnd) and [endRunStart, length). */
interface EdgeRuns {
  startRunEnd: number
  endRunStart: number
}

function edgeRunsOf(key: string): EdgeRuns {
  // UTF-8 sequences are prefix-free and suffix-free, so a run splits into escapes in one way only.
  const startEscapes: number[] = []
  let startRunEnd = 0
  for (let length = whiteSpaceEscapeAt(key, 0); length > 0; length = whiteSpaceEscapeAt(key, startRunEnd)) {
    startEscapes.push(startRunEnd)
    startRunEnd += length
  }
  if (startEscapes.length > 0 && isLiteralWhiteSpace(key, startRunEnd)) startRunEnd = startEscapes[startEscapes.length - 1]

  const endEscapes: number[] = []
  let endRunStart = key.length
  for (let length = whiteSpaceEscapeBefore(key, endRunStart, startRunEnd); length > 0; length = whiteSpaceEscapeBefore(key, endRunStart, startRunEnd)) {
    endRunStart -= length
    endEscapes.push(endRunStart)
  }
  if (endEscapes.length > 0 && isLiteralWhiteSpace(key, endRunStart - 1)) endRunStart = endEscapes.length > 1 ? endEscapes[endEscapes.length - 2] : key.length

  return { startRunEnd, endRunStart }
}

/** Returns the length of the escape that decodeName reads at `index`, or 0 when the character there is literal. */
function escapeLengthAt(key: string, index: number, runs: EdgeRuns = edgeRunsOf(key)): number {
  if (index < runs.startRunEnd || index >= runs.endRunStart) return whiteSpaceEscapeAt(key, index)
  if (key.startsWith('%5C', index)) return 3
  if (!key.startsWith('%25', index)) return 0

  // "%25" stands for "%" where a "%" would start an escape, as in "%255C" for the name "%5C".
  const withPercent = key.slice(0, index) + '%' + key.slice(index + 3)
  return escapeLengthAt(withPercent, index) > 0 ? 3 : 0
}

/** Returns the key component of a name: a non-empty string without "/" and NUL. */
export function encodeName(name: string): string {
  const characters = Array.from(name)
  let startRunLength = 0
  while (startRunLength < characters.length && WHITE_SPACE.test(characters[startRunLength])) startRunLength++
  let endRunLength = 0
  while (endRunLength < characters.length - startRunLength && WHITE_SPACE.test(characters[characters.length - 1 - endRunLength])) endRunLength++

  const startRun = percentEncode(characters.slice(0, startRunLength).join(''))
  const middle = characters.slice(startRunLength, characters.length - endRunLength).join('')
  const endRun = percentEncode(characters.slice(characters.length - endRunLength).join(''))

  // Each "%" is escaped exactly when decodeName would read an escape at it in the key built so
  // far. The "%" that starts the middle and the one that starts a white space escape at its end
  // are decided first, because they decide where the edge runs end for all the others.
  const escaped = new Set<number>()
  const keyWith = (literalIndex: number): { key: string; keyIndex: number } => {
    let key = startRun
    let keyIndex = -1
    for (let index = 0; index < middle.length; index++) {
      if (index === literalIndex) keyIndex = key.length
      if (middle[index] === '\\') key += '%5C'
      else if (middle[index] === '%' && escaped.has(index)) key += '%25'
      else key += middle[index]
    }
    return { key: key + endRun, keyIndex }
  }

  const percents: number[] = []
  for (let index = middle.indexOf('%'); index !== -1; index = middle.indexOf('%', index + 1)) percents.push(index)
  const lastEscapeStart = percents.find((index) => whiteSpaceEscapeAt(middle, index) === middle.length - index)
  const order = [...new Set([0, lastEscapeStart ?? 0, ...percents])].filter((index) => middle[index] === '%')
  for (const index of order) {
    const { key, keyIndex } = keyWith(index)
    if (escapeLengthAt(key, keyIndex) > 0) escaped.add(index)
  }
  return keyWith(-1).key
}

/** Returns the name of a key component, the inverse of encodeName. Never throws. */
export function decodeName(component: string): string {
  if (!component.includes('%')) return component

  const runs = edgeRunsOf(component)
  let name = ''
  let index = 0
  while (index < component.length) {
    const length = component[index] === '%' ? escapeLengthAt(component, index, runs) : 0
    const escape = component.slice(index, index + length)
    if (length === 0) name += component[index]
    else if (escape === '%5C') name += '\\'
    else if (escape === '%25') name += '%'
    else name += whiteSpaceOf(escape)!
    index += Math.max(length, 1)
  }
  return name
}

/** Returns the key of a file at `path` (a volume path, "" for the root). */
export function fileKey(path: string): string {
  return path.split('/').map(encodeName).join('/')
}

/** Returns the key of a directory at `path`: "/" for the root, otherwise the file key and "/". */
export function dirKey(path: string): string {
  return path === '' ? '/' : fileKey(path) + '/'
}

/**
 * Returns the name of a key that a listing of the directory at `dirPath` returned, or null when
 * no name in that directory has this key.
 * NOTE: no name has a key component that contains "\" or has white space at either end, because
 * encodeName escapes those characters. So an object that another client of an s3 or webdav
 * service writes under such a key cannot be reached through the volume. Neither can a file whose
 * name contains "\" in an fs root, which OpenDAL lists with "/" in place of "\". Listings leave
 * such keys out.
 */
export function nameOfListedKey(dirPath: string, key: string): string | null {
  const prefix = dirPath === '' ? '' : fileKey(dirPath) + '/'
  if (!key.startsWith(prefix)) return null
  const component = key.slice(prefix.length, key.endsWith('/') ? -1 : undefined)
  if (component === '' || component.includes('/')) return null

  const name = decodeName(component)
  return encodeName(name) === component ? name : null
}

/** Joins a directory's volume path and a name. */
export function childPath(dirPath: string, name: string): string {
  return dirPath === '' ? name : `${dirPath}/${name}`
}
