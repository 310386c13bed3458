// Turns the `config` map of an opendal volume into the options of its Operator. References are
// resolved, and their values are checked like values written in the file. The guard options that
// keep OpenDAL from ambient credentials and cloud metadata services are switched on unless the
// volume sets them itself.

import { lookup as dnsLookup } from 'node:dns/promises'

import { Operator } from 'opendal'

import { checkOptionValue, opendalServices, optionKindOf, resolvesToMetadata, type HostLookup, type OpendalService } from '../../config/opendal.js'
import { isReference, SecretResolutionError, type SecretResolver } from '../../secrets/index.js'

/** Region given to an S3 service that names none, which S3-compatible servers accept. */
export const defaultS3Region = 'us-east-1'

/** A volume option that cannot be used. The message names the reference, if any, and never a resolved credential. */
export class OpendalOptionError extends Error {
  override name = 'OpendalOptionError'
  constructor(
    /** The option, such as `endpoint`, or '' for the config as a whole. */
    readonly option: string,
    message: string
  ) {
    super(message)
  }
}

export interface OperatorOptions {
  options: Record<string, string>
  /** Options the node set because the volume did not, for the start-up log. */
  defaulted: Record<string, string>
}

/** Reads the region from an AWS endpoint such as https://s3.eu-west-1.amazonaws.com, or null. */
function regionOfEndpoint(endpoint: string | undefined): string | null {
  if (endpoint === undefined) return null
  try {
    const match = /(?:^|\.)s3[.-]([a-z0-9-]+)\.amazonaws\.com$/.exec(new URL(endpoint).hostname)
    return match === null || match[1] === 'external-1' ? null : match[1]!
  } catch {
    return null
  }
}

/**
 * Resolves the references in `config` and returns the options for `new Operator(service, ...)`.
 * Throws OpendalOptionError for a reference that does not resolve or a resolved value that does
 * not suit its option.
 */
export async function operatorOptions(
  service: OpendalService,
  config: Record<string, unknown>,
  secrets: SecretResolver,
  lookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true })
): Promise<OperatorOptions> {
  const options: Record<string, string> = {}
  for (const [key, written] of Object.entries(config)) {
    const kind = optionKindOf(service, key)
    if (kind === null || typeof written !== 'string') throw new OpendalOptionError(key, `not an option of the ${service} service`)
    if (!isReference(written)) {
      options[key] = written
      continue
    }
    let value: string
    try {
      value = await secrets.resolve(written)
    } catch (error) {
      if (error instanceof SecretResolutionError) throw new OpendalOptionError(key, error.message)
      throw error
    }
    // The value came from a secret store or the environment, so the message never shows it.
    const problem = checkOptionValue(service, key, kind, value, true)
    if (problem !== null) throw new OpendalOptionError(key, `${written} resolved to a value that does not suit the option: ${problem}`)
    options[key] = value
  }

  // A host name may lead to a metadata service that its text does not show.
  for (const [key, value] of Object.entries(options)) {
    if (optionKindOf(service, key) !== 'url') continue
    const address = await resolvesToMetadata(new URL(value).hostname, lookup)
    if (address !== null) {
      throw new OpendalOptionError(key, `the host of ${JSON.stringify(value)} resolves to ${address}, a cloud metadata service or a link-local address; use the storage service's endpoint`)
    }
  }

  const defaulted: Record<string, string> = {}
  for (const guard of opendalServices[service].guards) {
    if (options[guard] === undefined) defaulted[guard] = 'true'
  }
  if (service === 's3' && options.region === undefined) defaulted.region = regionOfEndpoint(options.endpoint) ?? defaultS3Region
  return { options: { ...options, ...defaulted }, defaulted }
}

/** Builds the Operator, turning OpenDAL's own refusal into an OpendalOptionError. */
export function buildOperator(service: OpendalService, options: Record<string, string>, redact: (text: string) => string): Operator {
  try {
    return new Operator(service, options)
  } catch (error) {
    throw new OpendalOptionError('', `OpenDAL rejected the ${service} options: ${redact(error instanceof Error ? error.message : String(error))}`)
  }
}


/**
 * Shortens an OpenDAL error message for an operator: the kind and the operation, the URI and
 * HTTP status from its context, and the service's own error after "=>", without the response
 * headers. Returns the fix that the failure suggests as well.
 */
export function summarizeOpendalError(message: string): { summary: string; fix: string } {
  const flat = message.replace(/\s+/g, ' ').trim()
  const head = flat.split(', context:')[0]!
  const uri = /uri: (\S+?),? /.exec(flat)?.[1]
  const status = /status: (\d{3})/.exec(flat)?.[1]
  const cause = flat.includes(' => ') ? flat.slice(flat.lastIndexOf(' => ') + 4) : ''
  const details = [uri === undefined ? null : `uri ${uri}`, status === undefined ? null : `HTTP ${status}`].filter((part) => part !== null)
  const summary = `${head}${details.length > 0 ? ` (${details.join(', ')})` : ''}${cause === '' ? '' : `: ${cause}`}`

  let fix = 'check that the service runs and that the volume config points at it'
  if (/Unauthorized|PermissionDenied|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied/.test(flat) || status === '401' || status === '403') {
    fix = 'check the credentials of the volume'
  } else if (/NoSuchBucket|ContainerNotFound|NotFound/.test(flat) || status === '404') {
    fix = 'check the bucket, container or root of the volume'
  }
  return { summary, fix }
}
