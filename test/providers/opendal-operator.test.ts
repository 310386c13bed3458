// The options an opendal volume gives its Operator. References are resolved through a real
// SecretResolver (env: from a given environment, secret: from the fake OpenBao server), guard
// options are switched on unless the volume sets them, and errors name references, never values.

import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { VaultConfig } from '../../src/config/secrets.js'
import { buildOperator, defaultS3Region, OpendalOptionError, operatorOptions, summarizeOpendalError } from '../../src/providers/opendal/operator.js'
import { SecretResolver } from '../../src/secrets/index.js'
import { VaultFake } from '../helpers/vault-fake.js'

const logger = pino({ level: process.env.AEGIS_TEST_LOG ?? 'silent' })
const token = 'test-root-token'
const secretKey = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY'
let vault: VaultFake

beforeAll(async () => {
  vault = await VaultFake.start({ tokens: [token] })
  vault.putSecret('aws/s3-reader', { 'access-key': 'AKIDEXAMPLE', 'secret-key': secretKey })
})

afterAll(async () => {
  await vault?.close()
})

function resolver(env: Record<string, string> = {}): SecretResolver {
  const config: VaultConfig = { address: vault.address, mount: 'secret', namespace: null, auth: { method: 'token', token: { kind: 'literal', value: token } }, timeoutMs: 2000 }
  return new SecretResolver({ vault: config, logger, env, retries: 0 })
}

async function optionError(promise: Promise<unknown>): Promise<OpendalOptionError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught
  )
  expect(error).toBeInstanceOf(OpendalOptionError)
  return error as OpendalOptionError
}

describe('opendal operator options', () => {
  it('resolves secret: and env: references', async () => {
    const config = { bucket: 'b', endpoint: 'env:S3_ENDPOINT', access_key_id: 'secret:aws/s3-reader/access-key', secret_access_key: 'secret:aws/s3-reader/secret-key' }
    const { options } = await operatorOptions('s3', config, resolver({ S3_ENDPOINT: 'http://127.0.0.1:9000' }))
    expect(options).toMatchObject({ endpoint: 'http://127.0.0.1:9000', access_key_id: 'AKIDEXAMPLE', secret_access_key: secretKey })
  })

  it('switches on the s3 guards unless the volume sets them', async () => {
    const guarded = await operatorOptions('s3', { bucket: 'b' }, resolver())
    expect(guarded.defaulted).toMatchObject({ disable_config_load: 'true', disable_ec2_metadata: 'true' })
    expect(guarded.options).toMatchObject({ disable_config_load: 'true', disable_ec2_metadata: 'true' })

    const optedIn = await operatorOptions('s3', { bucket: 'b', disable_ec2_metadata: 'false' }, resolver())
    expect(optedIn.options.disable_ec2_metadata).toBe('false')
    expect(optedIn.defaulted.disable_ec2_metadata).toBeUndefined()
    expect(optedIn.options.disable_config_load).toBe('true')
  })

  it('switches on the gcs guards', async () => {
    const { options } = await operatorOptions('gcs', { bucket: 'b' }, resolver())
    expect(options).toMatchObject({ disable_config_load: 'true', disable_vm_metadata: 'true' })
  })

  it('takes the s3 region from an AWS endpoint, or the default', async () => {
    expect((await operatorOptions('s3', { bucket: 'b', endpoint: 'https://s3.eu-west-3.amazonaws.com' }, resolver())).options.region).toBe('eu-west-3')
    expect((await operatorOptions('s3', { bucket: 'b', endpoint: 'http://127.0.0.1:9000' }, resolver())).options.region).toBe(defaultS3Region)
    expect((await operatorOptions('s3', { bucket: 'b', region: 'ap-south-1' }, resolver())).options.region).toBe('ap-south-1')
  })

  it('names the reference that does not resolve', async () => {
    const error = await optionError(operatorOptions('s3', { bucket: 'b', secret_access_key: 'secret:aws/s3-reader/no-such-key' }, resolver()))
    expect(error.option).toBe('secret_access_key')
    expect(error.message).toContain('secret:aws/s3-reader/no-such-key')
    expect(error.message).not.toContain(secretKey)
  })

  it('names an unset environment variable', async () => {
    const error = await optionError(operatorOptions('webdav', { endpoint: 'env:DAV_ENDPOINT' }, resolver()))
    expect(error.option).toBe('endpoint')
    expect(error.message).toContain('DAV_ENDPOINT is not set')
  })

  it('checks resolved values like written ones', async () => {
    const error = await optionError(operatorOptions('s3', { bucket: 'b', endpoint: 'env:S3_ENDPOINT' }, resolver({ S3_ENDPOINT: 'http://169.254.169.254/latest' })))
    expect(error.option).toBe('endpoint')
    expect(error.message).toContain('env:S3_ENDPOINT resolved to a value that does not suit the option')
    expect(error.message).toContain('metadata service')
  })

  it('rejects a host name that resolves to a metadata service', async () => {
    const lookup = async (hostname: string) => (hostname === 'storage.example.test' ? [{ address: '10.0.0.7' }, { address: '169.254.169.254' }] : [])
    const error = await optionError(operatorOptions('s3', { bucket: 'b', endpoint: 'http://storage.example.test:9000' }, resolver(), lookup))
    expect(error.option).toBe('endpoint')
    expect(error.message).toContain('resolves to 169.254.169.254')
  })

  it('accepts a host name that resolves elsewhere', async () => {
    const lookup = async () => [{ address: '127.0.0.1' }]
    const { options } = await operatorOptions('webdav', { endpoint: 'http://dav.example.test:8080' }, resolver(), lookup)
    expect(options.endpoint).toBe('http://dav.example.test:8080')
  })

  it.each([
    ['endpoint', 'ftp://bob:UrlPassw0rd55@127.0.0.1'],
    ['endpoint', 'http://bob:UrlPassw0rd55@127.0.0.1:99999'],
    ['disable_config_load', 'maybeUrlPassw0rd55']
  ])('never shows the resolved %s value', async (option, value) => {
    const error = await optionError(operatorOptions('s3', { bucket: 'b', [option]: 'env:RESOLVED' }, resolver({ RESOLVED: value })))
    expect(error.message).toContain('env:RESOLVED resolved to a value that does not suit the option')
    expect(error.message).not.toContain('UrlPassw0rd55')
  })

  it('never shows a resolved credential that does not suit its option', async () => {
    const error = await optionError(operatorOptions('webdav', { endpoint: 'http://127.0.0.1:8080', password: 'env:DAV_PASSWORD' }, resolver({ DAV_PASSWORD: 'line1\nline2-secret' })))
    expect(error.message).toContain('control character')
    expect(error.message).not.toContain('line2-secret')
  })

  it('turns a refusal of OpenDAL into an option error', () => {
    const secrets = resolver()
    const redact = (text: string) => secrets.redact(text)
    expect(() => buildOperator('s3', { bucket: 'b', region: 'us-east-1', batch_max_operations: 'many' }, redact)).toThrow(OpendalOptionError)
    expect(() => buildOperator('s3', { bucket: 'b', region: 'us-east-1' }, redact)).not.toThrow()
  })
})

describe('opendal error summaries', () => {
  const unauthorized =
    'open: Unexpected (permanent) at list, context: { uri: http://127.0.0.1:18081/, response: Parts { status: 401, version: HTTP/1.1, headers: {"www-authenticate": "Basic realm=x"} }, service: webdav, path: / } => Unauthorized\n'
  const noBucket =
    'open: ConfigInvalid (permanent) at list, context: { uri: http://127.0.0.1:9000/nosuch?list-type=2, response: Parts { status: 404, version: HTTP/1.1, headers: {} }, service: s3, path: / } => S3Error { code: "NoSuchBucket" }'

  it('keeps the kind, uri, status and cause', () => {
    const { summary } = summarizeOpendalError(unauthorized)
    expect(summary).toBe('open: Unexpected (permanent) at list (uri http://127.0.0.1:18081/, HTTP 401): Unauthorized')
  })

  it('drops the response headers', () => {
    expect(summarizeOpendalError(unauthorized).summary).not.toContain('www-authenticate')
  })

  it('points a 401 at the credentials', () => {
    expect(summarizeOpendalError(unauthorized).fix).toBe('check the credentials of the volume')
  })

  it('points a missing bucket at the bucket', () => {
    expect(summarizeOpendalError(noBucket).fix).toBe('check the bucket, container or root of the volume')
  })

  it('keeps a message without context whole', () => {
    expect(summarizeOpendalError('open: Unexpected (temporary) at list: connection refused')).toEqual({
      summary: 'open: Unexpected (temporary) at list: connection refused',
      fix: 'check that the service runs and that the volume config points at it'
    })
  })
})
