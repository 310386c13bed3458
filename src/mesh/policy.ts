// Cedar authorization of remote requests: the node that owns a volume decides each SealEnvelope.
//
// Entities: the calling node is the principal (Aegis::Node, with the labels the configuration
// gives it), the volume is the resource (Aegis::Volume: owner, access mode, storage class,
// labels), and each remote operation is an action in the group Read or Write. The context has
// the path, offset and length. Cedar denies what no policy permits.

import './v8-flags.js'
import fs from 'node:fs'
import path from 'node:path'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import type { Logger } from 'pino'

export const READ_OPERATIONS = ['getattr', 'lookup', 'access', 'readlink', 'read_at', 'readdir', 'fsstat', 'fsinfo', 'pathconf'] as const
export const WRITE_OPERATIONS = ['setattr', 'write_at', 'create', 'mkdir', 'symlink', 'remove', 'rmdir', 'rename', 'link', 'commit'] as const

const ACTION_LIST = (names: readonly string[]): string => names.map((name) => JSON.stringify(name)).join(', ')

/** The Cedar schema every policy set is validated against. */
export const CEDAR_SCHEMA = `namespace Aegis {
  entity Node = { "labels": Set<String> };
  entity Volume = { "owner": String, "accessMode": String, "storageClass": String, "labels": Set<String> };
  type RequestContext = { "path": String, "offset": Long, "length": Long };
  action Read, Write;
  action ${ACTION_LIST(READ_OPERATIONS)} in [Read] appliesTo { principal: Node, resource: Volume, context: RequestContext };
  action ${ACTION_LIST(WRITE_OPERATIONS)} in [Write] appliesTo { principal: Node, resource: Volume, context: RequestContext };
}`

const SCHEMA_NAME = 'aegis'
const DECISIONS_MAX = 65_536

/** Thrown when policies cannot be read, parsed or validated; the message names file and policy. */
export class PolicyError extends Error {
  override name = 'PolicyError'
}

export interface AuthorizationRequest {
  peerId: string
  peerLabels: readonly string[]
  operation: string
  volume: { id: string; owner: string; accessMode: string; storageClass: string; labels: readonly string[] }
  path: string
  offset: number
  length: number
}

export interface Decision {
  allowed: boolean
  /** Ids of the policies that decided: the permits that allowed, or the forbids that denied. */
  policyIds: string[]
}

function errorText(errors: Array<{ message: string; help?: string | null }>): string {
  return errors.map((error) => (error.help ? `${error.message} (${error.help})` : error.message)).join('; ')
}

/** Reads every .cedar file of a directory into policies keyed by id: `@id("...")`, or file#index. */
function readPolicies(directory: string): Record<string, string> {
  let files: string[]
  try {
    files = fs.readdirSync(directory).filter((name) => name.endsWith('.cedar')).sort()
  } catch (error) {
    throw new PolicyError(`cannot read the policy directory ${directory}: ${(error as Error).message}`)
  }
  if (files.length === 0) throw new PolicyError(`${directory} has no .cedar files; add at least one policy (without any, every request is denied)`)

  const policies: Record<string, string> = {}
  for (const file of files) {
    let text: string
    try {
      text = fs.readFileSync(path.join(directory, file), 'utf8')
    } catch (error) {
      throw new PolicyError(`cannot read the policy file ${path.join(directory, file)}: ${(error as Error).message}`)
    }
    const parts = cedar.policySetTextToParts(text)
    if (parts.type === 'failure') throw new PolicyError(`${path.join(directory, file)}: ${errorText(parts.errors)}`)
    if (parts.policy_templates.length > 0) throw new PolicyError(`${path.join(directory, file)}: policy templates are not supported; write static policies`)
    parts.policies.forEach((policy, index) => {
      const id = /@id\("([^"]+)"\)/.exec(policy)?.[1] ?? `${file}#${index}`
      if (policies[id] !== undefined) throw new PolicyError(`${path.join(directory, file)}: policy id ${JSON.stringify(id)} is used twice; give each policy its own @id`)
      policies[id] = policy
    })
  }
  return policies
}

/**
 * Parses and validates the policies of `directory` against CEDAR_SCHEMA. Returns the policies
 * keyed by id, or throws PolicyError with every validation error.
 */
export function checkPolicies(directory: string): Record<string, string> {
  const policies = readPolicies(directory)
  const answer = cedar.validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: policies }, validationSettings: { mode: 'strict' } })
  if (answer.type === 'failure') throw new PolicyError(`policies in ${directory} could not be validated: ${errorText(answer.errors)}`)
  if (answer.validationErrors.length > 0) {
    const details = answer.validationErrors.map((item) => `policy ${item.policyId}: ${errorText([item.error])}`).join('; ')
    throw new PolicyError(`policies in ${directory} do not match the schema: ${details}`)
  }
  return policies
}

/**
 * Keeps the current pre-parsed policy set and decides authorization requests, caching decisions
 * until the next successful load.
 */
export class PolicyEngine {
  private policySetId: string | null = null
  private generation = 0
  private readonly decisions = new Map<string, Decision>()
  /** False when no policy reads context.offset or context.length, so decisions can ignore them. */
  private usesRange = true

  constructor(
    private readonly directory: string,
    private readonly logger: Logger
  ) {
    const schema = cedar.preparseSchema(SCHEMA_NAME, CEDAR_SCHEMA)
    if (schema.type === 'failure') throw new PolicyError(`the built-in Cedar schema does not parse: ${errorText(schema.errors)}`)
  }

  /** Loads the directory's policies; throws PolicyError and keeps the current set on failure. */
  load(): number {
    const policies = checkPolicies(this.directory)
    const id = `policies-${++this.generation}`
    const parsed = cedar.preparsePolicySet(id, { staticPolicies: policies })
    if (parsed.type === 'failure') throw new PolicyError(`policies in ${this.directory} do not parse: ${errorText(parsed.errors)}`)
    this.policySetId = id
    this.usesRange = Object.values(policies).some((text) => /\b(offset|length)\b/.test(text))
    this.decisions.clear()
    const count = Object.keys(policies).length
    this.logger.info({ directory: this.directory, policies: count, generation: this.generation }, 'policies loaded')
    return count
  }

  /** Reloads (on SIGHUP): a policy set that fails to load is logged and the current one stays. */
  reload(): boolean {
    try {
      this.load()
      return true
    } catch (error) {
      this.logger.error({ err: error, directory: this.directory }, 'policy reload failed; the previous policies stay in force')
      return false
    }
  }

  authorize(request: AuthorizationRequest): Decision {
    if (this.policySetId === null) throw new PolicyError('no policies are loaded')
    // Reads and writes at new offsets would otherwise miss the cache on every call.
    const range = this.usesRange ? [request.offset, request.length] : []
    const key = JSON.stringify([request.peerId, request.peerLabels, request.operation, request.volume, request.path, ...range])
    const cached = this.decisions.get(key)
    if (cached !== undefined) return cached

    const answer = cedar.statefulIsAuthorized({
      principal: { type: 'Aegis::Node', id: request.peerId },
      action: { type: 'Aegis::Action', id: request.operation },
      resource: { type: 'Aegis::Volume', id: request.volume.id },
      context: { path: request.path, offset: request.offset, length: request.length },
      preparsedPolicySetId: this.policySetId,
      preparsedSchemaName: SCHEMA_NAME,
      validateRequest: true,
      entities: [
        { uid: { type: 'Aegis::Node', id: request.peerId }, attrs: { labels: [...request.peerLabels] }, parents: [] },
        {
          uid: { type: 'Aegis::Volume', id: request.volume.id },
          attrs: { owner: request.volume.owner, accessMode: request.volume.accessMode, storageClass: request.volume.storageClass, labels: [...request.volume.labels] },
          parents: []
        }
      ]
    })
    if (answer.type === 'failure') {
      this.logger.error({ errors: errorText(answer.errors), operation: request.operation, peer: request.peerId }, 'authorization failed; denying')
      return { allowed: false, policyIds: [] }
    }

    const decision: Decision = { allowed: answer.response.decision === 'allow', policyIds: answer.response.diagnostics.reason }
    if (this.decisions.size >= DECISIONS_MAX) this.decisions.clear()
    this.decisions.set(key, decision)
    return decision
  }
}
