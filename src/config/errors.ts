// The one error type of the configuration layer. Its message is written to be shown to the
// operator as it is, so it names where the value came from, the field, the value and the fix.

export interface ConfigErrorOptions {
  /** Where the value came from: the config file path, 'embedded default' or 'command line'. Omitted for a bare value. */
  source?: string
  /** The path of the offending key, such as `volumes[2].access_mode`, or '' for the whole file. */
  field: string
  /** The problem with the value, then "; " and the fix. */
  detail: string
  /** The 1-based line of the config file, when known (YAML syntax errors). */
  line?: number
}

/**
 * An invalid or unreadable configuration. The message has the form
 * `<source>: <field>: <detail>`, and the source or the field is left out when empty.
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly source: string | null
  readonly field: string
  readonly detail: string
  readonly line: number | null

  constructor(options: ConfigErrorOptions, errorOptions?: ErrorOptions) {
    const parts = [options.source, options.field, options.detail].filter((part) => part !== undefined && part !== '')
    super(parts.join(': '), errorOptions)
    this.source = options.source ?? null
    this.field = options.field
    this.detail = options.detail
    this.line = options.line ?? null
  }
}

const maxShownLength = 80

/**
 * Describes a parsed YAML value for an error message: strings quoted as JSON (cut after 80
 * characters), numbers and booleans as written, and collections by their kind.
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value'
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value)
    return quoted.length <= maxShownLength ? quoted : quoted.slice(0, maxShownLength - 4) + '..."'
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a map'
  return `a ${typeof value}`
}

/** Names the YAML type of a value and shows the value, for "expected X, got Y" messages. */
export function describeKind(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value'
  if (typeof value === 'string') return `the string ${describeValue(value)}`
  if (typeof value === 'number') return `the number ${describeValue(value)}`
  if (typeof value === 'boolean') return `the boolean ${describeValue(value)}`
  return describeValue(value)
}
