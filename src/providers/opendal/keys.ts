// Object keys of an OpenDAL volume. OpenDAL normalizes every path before it reaches a service:
// it trims white space at both ends, and the fs service turns "\" into "/". A name is therefore
// escaped before it becomes a key component: "%" and "\" everywhere, and white space at either
// end, each as %XX per UTF-8 byte. Every other character is stored as it is.
//
// A node's path in the volume (node.path() without its leading "/") contains the names
// unescaped. Only keys are escaped. Directory keys end with "/", the root's key is "/".

const LEADING_SPACE = /^\s+/u
const TRAILING_SPACE = /\s+$/u
const ESCAPED_RUN = /(?:%[0-9A-F]{2})+/g

function percentEncode(text: string): string {
  let encoded = ''
  for (const byte of Buffer.from(text, 'utf8')) encoded += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  return encoded
}

/** Returns the key component for a name. */
export function encodeName(name: string): string {
  let escaped = name.replace(/[%\\]/g, (character) => percentEncode(character))
  escaped = escaped.replace(LEADING_SPACE, (space) => percentEncode(space))
  escaped = escaped.replace(TRAILING_SPACE, (space) => percentEncode(space))
  return escaped
}

/** Returns the name of a key component, the inverse of encodeName. */
export function decodeName(component: string): string {
  return component.replace(ESCAPED_RUN, (run) => decodeURIComponent(run))
}

/** Returns the key of a file at `path` (a volume path, "" for the root). */
export function fileKey(path: string): string {
  return path.split('/').map(encodeName).join('/')
}

/** Returns the key of a directory at `path`: "/" for the root, otherwise the file key and "/". */
export function dirKey(path: string): string {
  return path === '' ? '/' : fileKey(path) + '/'
}

/** Returns the unescaped last name of a key as a listing returns it ("a/b" or "a/b/"). */
export function nameOfKey(key: string): string {
  const trimmed = key.endsWith('/') ? key.slice(0, -1) : key
  return decodeName(trimmed.slice(trimmed.lastIndexOf('/') + 1))
}

/** Joins a directory's volume path and a name. */
export function childPath(dirPath: string, name: string): string {
  return dirPath === '' ? name : `${dirPath}/${name}`
}
