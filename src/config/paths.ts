// Absolute POSIX paths written in the configuration: mount paths inside agent containers, host
// directories and SeaweedFS filer prefixes. They are compared as written, so each must already be
// in normal form.

import { describeValue } from './errors.js'
import type { FieldReader } from './fields.js'

/** The directory every volume is mounted below inside agent containers. */
export const workspaceRoot = '/workspace'

/** Returns why `path` is not an absolute path in normal form, or null when it is one. */
export function findPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'is not an absolute path; start it with "/"'
  if (path !== '/' && path.endsWith('/')) return 'ends with "/"; remove the trailing slash'
  const segments = path.slice(1).split('/')
  if (path !== '/' && segments.includes('')) return 'contains an empty segment ("//"); use single slashes'
  if (segments.includes('.') || segments.includes('..')) {
    return 'contains a "." or ".." segment; write the path without them'
  }
  return null
}

/** Reads an absolute path in normal form. FieldReader.string already rejects NUL and control characters. */
export function readAbsolutePath(reader: FieldReader, value: unknown, field: string): string {
  const path = reader.string(value, field)
  const problem = findPathProblem(path)
  if (problem !== null) reader.fail(field, `${describeValue(path)} ${problem}`)
  return path
}

/** Reads a mount path, which must be strictly below /workspace. */
export function readMountPath(reader: FieldReader, value: unknown, field: string): string {
  const path = readAbsolutePath(reader, value, field)
  if (path === workspaceRoot) {
    reader.fail(field, `${describeValue(path)} is the workspace root itself; mount the volume in a directory below it, such as ${workspaceRoot}/data`)
  }
  if (!isInside(path, workspaceRoot)) {
    reader.fail(field, `${describeValue(path)} is outside ${workspaceRoot}; agents see volumes only below it, so use a path such as ${workspaceRoot}/data`)
  }
  return path
}

/** True when `path` is strictly inside `directory`, comparing whole components. */
export function isInside(path: string, directory: string): boolean {
  const prefix = directory === '/' ? '/' : directory + '/'
  return path.startsWith(prefix) && path.length > prefix.length
}

/** True when two normalized paths are equal or one contains the other: /a and /a/b overlap, /a and /ab do not. */
export function pathsOverlap(a: string, b: string): boolean {
  return a === b || isInside(a, b) || isInside(b, a)
}
