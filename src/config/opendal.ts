// The options each OpenDAL service takes, and their checks. OpenDAL ignores option names it does
// not know, so a misspelt `disable_ec2_metadata` would silently leave the metadata service
// reachable. The node therefore accepts only the names listed here, which follow the service
// configs of the OpenDAL release in the pinned `opendal` package.
//
// The same checks run twice: when the config is read, on every value written in the file, and
// when the node starts, on the values that `secret:` and `env:` references resolve to.

import { BlockList, isIP } from 'node:net'

import { describeValue } from './errors.js'

export type OpendalService = 's3' | 'gcs' | 'azblob' | 'webdav' | 'fs' | 'memory'

/**
 * The value an option takes:
 * - text: any string.
 * - url: an http or https URL that is not a cloud metadata service.
 * - flag: "true" or "false".
 * - count: a positive integer.
 * - secret: a credential, never shown in a message or a log line.
 * - path: an absolute path on the node.
 */
export type OptionKind = 'text' | 'url' | 'flag' | 'count' | 'secret' | 'path'

export interface ServiceOptions {
  options: Readonly<Record<string, OptionKind>>
  /** Options without which the service cannot work, each with an example for the message. */
  required: Readonly<Record<string, string>>
  /**
   * Options that the node sets to "true" unless the volume sets them: each one keeps OpenDAL
   * from reading ambient credentials (environment, ~/.aws, gcloud files) or from asking a cloud
   * metadata service for them. A volume that wants that behaviour sets the option to "false".
   */
  guards: readonly string[]
  /**
   * Options of which the volume must set at least one, with the reason: without them OpenDAL
   * would look for credentials around the node.
   */
  credentials?: { keys: readonly string[]; reason: string }
}

const serverSideEncryption = {
  server_side_encryption: 'text',
  server_side_encryption_aws_kms_key_id: 'text',
  server_side_encryption_customer_algorithm: 'text',
  server_side_encryption_customer_key: 'secret',
  server_side_encryption_customer_key_md5: 'text'
} as const

export const opendalServices: Readonly<Record<OpendalService, ServiceOptions>> = {
  s3: {
    options: {
      root: 'text',
      bucket: 'text',
      endpoint: 'url',
      region: 'text',
      access_key_id: 'secret',
      secret_access_key: 'secret',
      session_token: 'secret',
      role_arn: 'text',
      external_id: 'text',
      role_session_name: 'text',
      ...serverSideEncryption,
      default_storage_class: 'text',
      checksum_algorithm: 'text',
      disable_config_load: 'flag',
      disable_ec2_metadata: 'flag',
      allow_anonymous: 'flag',
      enable_virtual_host_style: 'flag',
      enable_versioning: 'flag',
      disable_stat_with_override: 'flag',
      disable_write_with_if_match: 'flag',
      enable_write_with_append: 'flag',
      disable_list_objects_v2: 'flag',
      enable_request_payer: 'flag',
      batch_max_operations: 'count',
      delete_max_size: 'count'
    },
    required: { bucket: 'my-ml-datasets' },
    guards: ['disable_config_load', 'disable_ec2_metadata']
  },
  gcs: {
    options: {
      root: 'text',
      bucket: 'text',
      endpoint: 'url',
      scope: 'text',
      service_account: 'text',
      credential: 'secret',
      credential_path: 'path',
      predefined_acl: 'text',
      default_storage_class: 'text',
      token: 'secret',
      allow_anonymous: 'flag',
      disable_vm_metadata: 'flag',
      disable_config_load: 'flag'
    },
    required: { bucket: 'my-ml-datasets' },
    guards: ['disable_config_load', 'disable_vm_metadata']
  },
  azblob: {
    options: {
      root: 'text',
      container: 'text',
      endpoint: 'url',
      account_name: 'text',
      account_key: 'secret',
      encryption_key: 'secret',
      encryption_key_sha256: 'secret',
      encryption_algorithm: 'text',
      sas_token: 'secret',
      batch_max_operations: 'count'
    },
    required: { container: 'checkpoints', endpoint: 'https://myaccount.blob.core.windows.net' },
    guards: [],
    // NOTE: the azblob service has no option that keeps it from the Azure metadata service, and
    // its credential loader may request a token there when no key is configured.
    credentials: { keys: ['account_key', 'sas_token'], reason: 'without them OpenDAL would ask the Azure metadata service for the node\'s own identity' }
  },
  webdav: {
    options: { root: 'text', endpoint: 'url', username: 'text', password: 'secret', token: 'secret', disable_copy: 'flag' },
    required: { endpoint: 'http://127.0.0.1:8080' },
    guards: []
  },
  fs: {
    // atomic_write_dir is left out: OpenDAL would create it with open modes, outside the checks
    // the node makes on the root, and the node uploads whole staged files anyway.
    options: { root: 'path' },
    required: { root: '/srv/aegis/objects' },
    guards: []
  },
  memory: {
    options: { root: 'text' },
    required: {},
    guards: []
  }
}

/** Names that other tools use for an option, with the name the node expects. */
export const optionAliases: Readonly<Record<string, string>> = {
  access_key: 'access_key_id',
  aws_access_key_id: 'access_key_id',
  secret_key: 'secret_access_key',
  aws_secret_access_key: 'secret_access_key',
  aws_session_token: 'session_token',
  user: 'username',
  pass: 'password',
  key: 'account_key',
  account: 'account_name',
  url: 'endpoint',
  path: 'root'
}

/** Returns the kind of a named option of `service`, or null when the service has no such option. */
export function optionKindOf(service: OpendalService, name: string): OptionKind | null {
  return Object.hasOwn(opendalServices[service].options, name) ? opendalServices[service].options[name]! : null
}

/** Host names of the instance metadata services of the large clouds. */
const metadataNames = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal'])

/**
 * Addresses of the instance metadata services: IPv4 link-local (169.254.169.254 and the like),
 * Alibaba's 100.100.100.200, Oracle's older 192.0.0.192, IPv6 link-local, AWS's fd00:ec2::254,
 * and the IPv4 link-local range written as IPv6. BlockList matches IPv4-mapped addresses such as
 * ::ffff:169.254.169.254 against the IPv4 rules. The NAT64 (64:ff9b::/96, and all of the local-use
 * 64:ff9b:1::/48), IPv4-compatible, IPv4-translated and 6to4 forms are listed here.
 */
const metadataAddresses = new BlockList()
metadataAddresses.addSubnet('169.254.0.0', 16, 'ipv4')
metadataAddresses.addAddress('100.100.100.200', 'ipv4')
metadataAddresses.addSubnet('fe80::', 10, 'ipv6')
metadataAddresses.addAddress('fd00:ec2::254', 'ipv6')
metadataAddresses.addAddress('192.0.0.192', 'ipv4')
metadataAddresses.addSubnet('64:ff9b::a9fe:0', 112, 'ipv6')
metadataAddresses.addSubnet('64:ff9b:1::', 48, 'ipv6')
metadataAddresses.addSubnet('::a9fe:0', 112, 'ipv6')
metadataAddresses.addSubnet('::ffff:0:a9fe:0', 112, 'ipv6')
metadataAddresses.addSubnet('2002:a9fe::', 32, 'ipv6')

/**
 * Returns true for a host that is a metadata service by name or by address. An endpoint there
 * would hand the node's own cloud identity to the author of the volume config. Host names that
 * merely resolve to such an address are caught when the node starts (see resolvesToMetadata).
 */
export function isMetadataHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '')
  if (metadataNames.has(host)) return true
  const family = isIP(host)
  if (family === 0) return false
  return metadataAddresses.check(host, family === 4 ? 'ipv4' : 'ipv6')
}

/** Resolves a host name to its addresses, as dns.promises.lookup with `all` does. */
export type HostLookup = (hostname: string) => Promise<Array<{ address: string }>>

/**
 * Returns the first address of `hostname` that is a metadata service, or null. A name that
 * cannot be resolved yields null, and the connection fails later with its own message.
 * NOTE: the name is resolved once, at start. A name whose DNS answer changes afterwards is not
 * checked again.
 */
export async function resolvesToMetadata(hostname: string, lookup: HostLookup): Promise<string | null> {
  if (isIP(hostname.replace(/^\[|\]$/g, '')) !== 0) return null
  let addresses: Array<{ address: string }>
  try {
    addresses = await lookup(hostname)
  } catch {
    return null
  }
  return addresses.find((entry) => isMetadataHost(entry.address))?.address ?? null
}

/**
 * Checks one value against its kind and returns the problem with its fix, or null when the value
 * is fine. A message about a secret option never shows the value.
 */
export function checkOptionValue(service: OpendalService, name: string, kind: OptionKind, value: string, hideValue = kind === 'secret'): string | null {
  const shown = hideValue ? 'the value' : describeValue(withoutUserInfo(value))
  if (/[\u0000-\u001f\u007f]/.test(value)) return `${shown} contains a control character; remove it`
  switch (kind) {
    case 'flag':
      return value === 'true' || value === 'false' ? null : `${shown} is not a flag; write "true" or "false"`
    case 'count':
      return /^[1-9][0-9]{0,8}$/.test(value) ? null : `${shown} is not a count; write a positive integer in quotes, such as "1000"`
    case 'path':
      return value.startsWith('/') ? null : `${shown} is not an absolute path; write the full path on the node, such as /srv/aegis/objects`
    case 'url':
      return checkEndpoint(service, value, shown)
    case 'secret':
      return value === '' ? 'the value is empty; give the credential, or a secret:<path>/<key> reference to it' : null
    case 'text':
      return null
  }
}

function checkEndpoint(service: OpendalService, value: string, shown: string): string | null {
  const url = parseHttpUrl(value)
  if (url === null) {
    return `${shown} is not an http or https URL; write the ${service} endpoint, such as ${opendalServices[service].required.endpoint ?? 'https://s3.us-east-1.amazonaws.com'}`
  }
  if (url.username !== '' || url.password !== '') {
    return 'the URL contains a user name or password; remove them and give credentials in their own options'
  }
  if (isMetadataHost(url.hostname)) {
    return `${shown} is a cloud metadata service or a link-local address, which would give the volume the node's own cloud identity; use the storage service's endpoint`
  }
  return null
}

/** Parses an http or https URL with a host, or returns null for anything else. */
export function parseHttpUrl(text: string): URL | null {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return null
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' ? url : null
}

/**
 * Returns `text` with the part before an "@" in its authority replaced by "***", so that a
 * message about a URL never shows a password written into it, even when the URL does not parse.
 */
export function withoutUserInfo(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^/?#]*@/, (_whole, scheme: string | undefined) => `${scheme ?? ''}***@`)
}
