// Resolution of `secret:` and `env:` references in volume configs.

export { SecretResolutionError } from './errors.js'
export type { SecretResolutionErrorOptions } from './errors.js'
export { redactedText } from './redactor.js'
export { isReference, parseReference } from './references.js'
export type { Reference } from './references.js'
export { resolverDefaults, SecretResolver } from './resolver.js'
export type { SecretResolverOptions } from './resolver.js'
