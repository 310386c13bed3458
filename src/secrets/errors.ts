// The one error type of secret resolution. Its message names the reference, the server and the
// HTTP status, and never a resolved value or a credential.

export interface SecretResolutionErrorOptions {
  /** The reference being resolved, such as `secret:aws/s3-reader/access-key` or `env:AWS_REGION`. */
  reference: string
  /** The OpenBao or Vault address involved, or null for `env:` references. */
  address: string | null
  /** The HTTP status of the last response, or null when no response arrived. */
  status: number | null
  /** The problem, then "; " and the fix. */
  detail: string
}

/**
 * Thrown when a reference cannot be resolved: a variable that is unset, a server that cannot be
 * reached or that rejects the request, a missing secret or key. The message has the form
 * `<reference>: <detail>`.
 */
export class SecretResolutionError extends Error {
  override name = 'SecretResolutionError'
  readonly reference: string
  readonly address: string | null
  readonly status: number | null

  constructor(options: SecretResolutionErrorOptions, errorOptions?: ErrorOptions) {
    super(`${options.reference}: ${options.detail}`, errorOptions)
    this.reference = options.reference
    this.address = options.address
    this.status = options.status
  }
}
