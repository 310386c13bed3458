// Reading the node configuration from a YAML file, from text, or from the built-in default.

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

import { isNode, isScalar, LineCounter, parseDocument, visit } from 'yaml'
import type { YAMLError } from 'yaml'

import { ConfigError, describeValue } from './errors.js'
import { validateConfig } from './schema.js'
import type { ConfigOverrides, NodeConfig } from './schema.js'

export type { ConfigOverrides } from './schema.js'

export interface ParseOptions {
  /** Named in every error message: the config file path or 'embedded default'. */
  source: string
  /** Directory that relative paths in the text are resolved against. */
  baseDir: string
  overrides?: ConfigOverrides
}

/** Source name of the configuration used when no file is given. */
export const embeddedDefaultSource = 'embedded default'

/**
 * The configuration used when no file is given: one 1 GiB scratch volume stored under the data
 * directory, served on 127.0.0.1:2049. It is parsed and validated like a file.
 */
export const embeddedDefaultYaml = `\
node:
  data_dir: ./.aegis
nfs:
  bind: 127.0.0.1
  port: 2049
volumes:
  - name: scratch
    type: local
    storage_class: ephemeral
    mount_path: /workspace/scratch
    access_mode: read-write
    size_limit: 1Gi
    owner: { uid: 1000, gid: 1000 }
`

/** Parses and validates YAML text. Every problem, from syntax to values, throws ConfigError. */
export function parseConfigText(text: string, options: ParseOptions): NodeConfig {
  const { source } = options
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { lineCounter, uniqueKeys: true })

  const [problem] = [...document.errors, ...document.warnings]
  if (problem !== undefined) throw yamlSyntaxError(source, text, problem)

  // Plain objects cannot keep a list or a map as a key, so such keys are rejected here.
  visit(document, {
    Pair(_, pair) {
      if (!isNode(pair.key) || isScalar(pair.key)) return
      const { line, col } = lineCounter.linePos(pair.key.range?.[0] ?? 0)
      throw new ConfigError({
        source,
        field: '',
        line,
        detail: `invalid YAML at line ${line}, column ${col}: a key is a list or a map; keys must be plain names such as mount_path`
      })
    }
  })

  let data: unknown
  try {
    data = document.toJS()
  } catch (error) {
    // Unresolved aliases and excessive alias expansion surface only here.
    const detail = `invalid YAML: ${(error as Error).message}; fix the anchors (&name) and aliases (*name)`
    throw new ConfigError({ source, field: '', detail }, { cause: error })
  }
  return validateConfig(data, options)
}

function yamlSyntaxError(source: string, text: string, problem: YAMLError): ConfigError {
  const line = problem.linePos?.[0].line
  const where = problem.linePos === undefined ? '' : ` at line ${line}, column ${problem.linePos[0].col}`
  // The library message repeats the position and ends with a code excerpt, so only its first clause is kept.
  const firstLine = problem.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
  let reason = `${firstLine}; fix the YAML syntax there`
  if (problem.code === 'MULTIPLE_DOCS') {
    reason = 'the file contains more than one YAML document; remove the "---" separator and keep one document'
  } else if (problem.code === 'DUPLICATE_KEY' && line !== undefined) {
    const lineText = text.split(/\r?\n/)[line - 1]?.trim() ?? ''
    reason = `the key in ${describeValue(lineText)} appears twice in the same map; keep one of them`
  }
  return new ConfigError({ source, field: '', line, detail: `invalid YAML${where}: ${reason}` }, { cause: problem })
}

/**
 * Reads and validates a YAML config file. Relative paths inside it are resolved against the
 * file's directory. A missing or unreadable file and invalid YAML throw ConfigError naming `path`.
 */
export async function loadConfigFile(path: string, overrides?: ConfigOverrides): Promise<NodeConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ConfigError({ source: path, field: '', detail: describeReadError(error) }, { cause: error })
  }
  return parseConfigText(text, { source: path, baseDir: dirname(resolve(path)), overrides })
}

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  switch (code) {
    case 'ENOENT':
      return 'config file not found; check the path'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied reading the config file; make it readable by the user running aegis-node'
    case 'EISDIR':
      return 'the path is a directory; name the YAML config file inside it'
    default:
      return `the config file cannot be read (${(error as Error).message}); check the path and its permissions`
  }
}

/**
 * Returns the built-in configuration, validated like a file. Its relative paths resolve against
 * the working directory.
 */
export function embeddedDefaultConfig(overrides?: ConfigOverrides): NodeConfig {
  return parseConfigText(embeddedDefaultYaml, { source: embeddedDefaultSource, baseDir: process.cwd(), overrides })
}
