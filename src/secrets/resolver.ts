// Resolution of the `env:NAME` and `secret:<path>/<key>` references in volume configs. Each
// reference is looked up once and kept for the life of the node. Resolved values never reach
// the log: log lines name references only, and `redact` hides values in text from elsewhere.

import type { Logger } from 'pino'

import { isPlainMap } from '../config/fields.js'
import type { HostLookup } from '../config/opendal.js'
import type { VaultConfig } from '../config/secrets.js'
import type { Environment } from './credentials.js'
import { SecretResolutionError } from './errors.js'
import { Redactor } from './redactor.js'
import { isReference, parseReference } from './references.js'
import { VaultClient } from './vault-client.js'

export interface SecretResolverOptions {
  /** The server for `secret:` references, or null, in which case every `secret:` reference fails. */
  vault: VaultConfig | null
  /** Receives log lines that name references and the server, never values or credentials. */
  logger: Logger
  /** The variables that `env:` references and credentials read, process.env when omitted. */
  env?: Environment
  /** Further attempts of a read after a connection error, a timeout, HTTP 429 or HTTP 5xx. */
  retries?: number
  /** Wait before the first retry, in milliseconds, doubling for each further one. */
  retryDelayMs?: number
  /** Resolves the server's host name for the metadata-service check; the system resolver by default. */
  lookup?: HostLookup
}

export const resolverDefaults = {
  retries: 2,
  retryDelayMs: 200
} as const

/** Maximum number of key names listed when a secret lacks the requested key. */
const maxListedKeys = 20

export class SecretResolver {
  private readonly log: Logger
  private readonly env: Environment
  private readonly redactor = new Redactor()
  private readonly vault: VaultClient | null
  /** Lookups by reference. A failed lookup is removed, so a later call tries again. */
  private readonly cache = new Map<string, Promise<string>>()

  constructor(options: SecretResolverOptions) {
    this.log = options.logger
    this.env = options.env ?? process.env
    this.vault =
      options.vault === null
        ? null
        : new VaultClient({
            config: options.vault,
            logger: options.logger,
            redactor: this.redactor,
            env: this.env,
            retries: options.retries ?? resolverDefaults.retries,
            retryDelayMs: options.retryDelayMs ?? resolverDefaults.retryDelayMs,
            lookup: options.lookup
          })
  }

  /** True for a string that is a whole `secret:<path>/<key>` or `env:NAME` reference. */
  static isReference(value: unknown): value is string {
    return isReference(value)
  }

  /**
   * Returns the value of one reference, from the cache after the first lookup. Throws
   * SecretResolutionError when it cannot be resolved, and TypeError for a string that is not a
   * reference. Concurrent calls for one reference share the first caller's lookup, and with it
   * that caller's `signal`.
   */
  resolve(reference: string, signal?: AbortSignal): Promise<string> {
    const cached = this.cache.get(reference)
    if (cached !== undefined) return cached

    const lookup = this.lookUp(reference, signal)
    this.cache.set(reference, lookup)
    lookup.catch(() => {
      if (this.cache.get(reference) === lookup) this.cache.delete(reference)
    })
    return lookup
  }

  /**
   * Returns a copy of `config` in which every string that is a whole reference is replaced by
   * its value, in nested maps and lists too. Other values are copied as they are, and `config`
   * is not changed. Throws the first SecretResolutionError.
   */
  async resolveConfig(config: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const references = collectReferences(config)
    const resolved = await this.resolveMap(config, signal)
    if (references.length > 0) this.log.info({ references }, 'secret references resolved')
    return resolved
  }

  /** Returns `text` with every resolved value, token and secret_id seen so far replaced by `[secret]`. */
  redact(text: string): string {
    return this.redactor.redact(text)
  }

  private async resolveMap(config: Record<string, unknown>, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const entries = await Promise.all(Object.entries(config).map(async ([key, value]) => [key, await this.resolveValue(value, signal)] as const))
    return Object.fromEntries(entries)
  }

  private async resolveValue(value: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    if (isReference(value)) return this.resolve(value, signal)
    if (Array.isArray(value)) return Promise.all(value.map((item) => this.resolveValue(item, signal)))
    if (isPlainMap(value)) return this.resolveMap(value, signal)
    return value
  }

  private async lookUp(reference: string, signal: AbortSignal | undefined): Promise<string> {
    const parsed = parseReference(reference)
    // The string may be a credential passed here by mistake, so the message does not show it.
    if (parsed === null) throw new TypeError('the value is not a secret:<path>/<key> or env:NAME reference')

    const value = parsed.kind === 'env' ? this.readEnv(reference, parsed.name) : await this.readSecret(reference, parsed.path, parsed.key, signal)
    this.redactor.add(value)
    this.log.debug({ reference }, 'secret reference resolved')
    return value
  }

  private readEnv(reference: string, name: string): string {
    const value = this.env[name]
    if (value === undefined) {
      throw new SecretResolutionError({ reference, address: null, status: null, detail: `the environment variable ${name} is not set; set it in the environment of aegis-node` })
    }
    if (value === '') {
      throw new SecretResolutionError({ reference, address: null, status: null, detail: `the environment variable ${name} is empty; set it to the value` })
    }
    return value
  }

  private async readSecret(reference: string, path: string, key: string, signal: AbortSignal | undefined): Promise<string> {
    if (this.vault === null) {
      throw new SecretResolutionError({
        reference,
        address: null,
        status: null,
        detail: 'no secrets.vault server is configured to resolve secret: references; add a secrets.vault section or use env:NAME'
      })
    }

    const data = await this.vault.readSecret(path, reference, signal)
    const where = `the secret at ${path} on ${this.vault.address}`
    if (!Object.hasOwn(data, key)) {
      const keys = Object.keys(data)
      const listed = keys.length === 0 ? 'it has no keys' : `its keys are ${keys.slice(0, maxListedKeys).join(', ')}${keys.length > maxListedKeys ? ', ...' : ''}`
      throw new SecretResolutionError({ reference, address: this.vault.address, status: 200, detail: `${where} has no key ${JSON.stringify(key)}; ${listed}` })
    }

    const value = data[key]
    if (typeof value === 'string') return value
    if (typeof value === 'number' || typeof value === 'boolean') return String(value)
    const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : 'a map'
    throw new SecretResolutionError({
      reference,
      address: this.vault.address,
      status: 200,
      detail: `key ${JSON.stringify(key)} of ${where} is ${kind}, not a string; store the value as a string`
    })
  }
}

/** Lists the references in a config map, in nested maps and lists too. */
function collectReferences(value: unknown, found: string[] = []): string[] {
  if (isReference(value)) found.push(value)
  else if (Array.isArray(value)) value.forEach((item) => collectReferences(item, found))
  else if (isPlainMap(value)) Object.values(value).forEach((item) => collectReferences(item, found))
  return found
}
