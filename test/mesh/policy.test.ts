import fs from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { PolicyEngine, PolicyError, checkPolicies, type AuthorizationRequest } from '../../src/mesh/policy.js'
import { makeTempDir } from '../helpers/node.js'

const logger = pino({ level: 'silent' })

function policyDir(files: Record<string, string>): string {
  const dir = makeTempDir('aegis-policy-')
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  return dir
}

function request(overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest {
  return {
    peerId: '12D3KooWA',
    peerLabels: ['trusted'],
    operation: 'read_at',
    volume: { id: 'vol-1', owner: '12D3KooWB', accessMode: 'read-write', storageClass: 'persistent', labels: [] },
    path: '/data/file',
    offset: 0,
    length: 4096,
    ...overrides
  }
}

const BASE = `@id("trusted-read")
permit(principal, action in Aegis::Action::"Read", resource) when { principal.labels.contains("trusted") };

@id("writes-outside-secrets")
permit(principal, action in Aegis::Action::"Write", resource)
  when { resource.accessMode == "read-write" && principal.labels.contains("trusted") }
  unless { context.path like "/secrets/*" };
`

describe('cedar policies', () => {
  it('decides each range when a policy reads it', () => {
    const engine = new PolicyEngine(
      policyDir({ 'range.cedar': `@id("head-only")\npermit(principal, action == Aegis::Action::"read_at", resource) when { context.offset + context.length <= 8192 };\n` }),
      logger
    )
    engine.load()
    expect(engine.authorize(request({ offset: 0, length: 4096 })).allowed).toBe(true)
    expect(engine.authorize(request({ offset: 8192, length: 4096 })).allowed).toBe(false)
    expect(engine.authorize(request({ offset: 4096, length: 4096 })).allowed).toBe(true)
  })

  it('shares decisions across ranges otherwise', () => {
    const engine = new PolicyEngine(policyDir({ 'base.cedar': BASE }), logger)
    engine.load()
    const first = engine.authorize(request({ offset: 0 }))
    // The same decision object: served from the cache although the offset differs.
    expect(engine.authorize(request({ offset: 123_456 }))).toBe(first)
    expect(first.allowed).toBe(true)
  })

  it('allows and names the deciding policy', () => {
    const engine = new PolicyEngine(policyDir({ 'base.cedar': BASE }), logger)
    engine.load()
    const decision = engine.authorize(request())
    expect(decision.allowed).toBe(true)
    expect(decision.policyIds).toEqual(['trusted-read'])
  })

  it('denies by default', () => {
    const engine = new PolicyEngine(policyDir({ 'base.cedar': BASE }), logger)
    engine.load()
    expect(engine.authorize(request({ peerLabels: [] })).allowed).toBe(false)
    expect(engine.authorize(request({ operation: 'write_at', path: '/secrets/key' })).allowed).toBe(false)
    expect(engine.authorize(request({ operation: 'write_at', volume: { ...request().volume, accessMode: 'read-only' } })).allowed).toBe(false)
    expect(engine.authorize(request({ operation: 'write_at' })).allowed).toBe(true)
  })

  it('rejects policies that break the schema', () => {
    const dir = policyDir({ 'bad.cedar': 'permit(principal, action, resource) when { principal.nope == 1 };' })
    expect(() => checkPolicies(dir)).toThrow(PolicyError)
    expect(() => checkPolicies(dir)).toThrow(/nope/)
  })

  it('rejects text that does not parse', () => {
    expect(() => checkPolicies(policyDir({ 'broken.cedar': 'permit(principal' }))).toThrow(/broken\.cedar/)
  })

  it('rejects an empty directory', () => {
    expect(() => checkPolicies(policyDir({}))).toThrow(/no \.cedar files/)
  })

  it('reload changes the decision', () => {
    const dir = policyDir({ 'base.cedar': BASE })
    const engine = new PolicyEngine(dir, logger)
    engine.load()
    expect(engine.authorize(request()).allowed).toBe(true)
    fs.writeFileSync(path.join(dir, 'deny.cedar'), '@id("no-reads-of-data") forbid(principal, action == Aegis::Action::"read_at", resource) when { context.path like "/data/*" };')
    expect(engine.reload()).toBe(true)
    const decision = engine.authorize(request())
    expect(decision.allowed).toBe(false)
    expect(decision.policyIds).toEqual(['no-reads-of-data'])
  })

  it('failed reload keeps the old policies', () => {
    const dir = policyDir({ 'base.cedar': BASE })
    const engine = new PolicyEngine(dir, logger)
    engine.load()
    fs.writeFileSync(path.join(dir, 'bad.cedar'), 'permit(principal, action, resource) when { resource.nope };')
    expect(engine.reload()).toBe(false)
    expect(engine.authorize(request()).allowed).toBe(true)
  })
})
