// Contract cases as vitest tests. Each case gets a fresh volume from the fixture, opened behind
// AegisFsal, and is skipped with a note when the fixture lacks what the case needs.

import { it } from 'vitest'
import type { BackendInspector, ProviderCapabilities, ProviderFixture, ProviderInstance } from './fixture.js'
import { FsalHarness } from './harness.js'

/** A capability, an inspector for the backend, or a way to restart the provider. */
export type Requirement = keyof ProviderCapabilities | 'inspect' | 'reopen'

export interface CaseOptions {
  needs?: readonly Requirement[]
  /** The volume's size_limit; none when absent. */
  sizeLimitBytes?: number
}

export interface CaseScope {
  /** The open volume; restart() replaces it. */
  readonly fs: FsalHarness
  /** The backend seen around the provider; only for cases that need 'inspect'. */
  readonly inspect: BackendInspector
  /** Closes the volume and opens a new one over the same data and handle key, as a node restart does. */
  restart(): Promise<FsalHarness>
}

export type DefineCase = (title: string, options: CaseOptions, body: (scope: CaseScope) => Promise<void>) => void

const CAPABILITY_NAMES: Record<keyof ProviderCapabilities, string> = {
  symlinks: 'symbolic links',
  hardLinks: 'hard links',
  sparse: 'gaps of gigabytes without storage'
}

/** Returns the skip note for a requirement the fixture cannot meet, or null when it can. */
function missingCapability(fixture: ProviderFixture, requirement: Requirement): string | null {
  if (requirement === 'inspect' || requirement === 'reopen') return null
  if (fixture.capabilities[requirement]) return null
  return `backend has no ${CAPABILITY_NAMES[requirement]} (fixture sets ${requirement}: false)`
}

function missingFromInstance(instance: ProviderInstance, requirement: Requirement): string | null {
  if (requirement === 'inspect' && instance.inspect === undefined) return 'fixture provides no inspect, so the backend cannot be read around the provider'
  if (requirement === 'reopen' && instance.reopen === undefined) return 'fixture provides no reopen, so the backend keeps nothing across a restart'
  return null
}

/** Returns the function that defines contract cases against `fixture`. */
export function caseDefiner(fixture: ProviderFixture): DefineCase {
  return (title, options, body) => {
    const needs = options.needs ?? []
    it(title, { timeout: fixture.caseTimeoutMs }, async (context) => {
      const limitation = fixture.serverLimitations?.[title]
      if (limitation !== undefined) context.skip(`test server limitation: ${limitation}`)
      for (const requirement of needs) {
        const note = missingCapability(fixture, requirement)
        if (note !== null) context.skip(note)
      }

      const instance = await fixture.create()
      let harness: FsalHarness | null = null
      try {
        for (const requirement of needs) {
          const note = missingFromInstance(instance, requirement)
          if (note !== null) context.skip(note)
        }

        harness = await FsalHarness.open(instance.provider, { sizeLimitBytes: options.sizeLimitBytes })
        const scope: CaseScope = {
          get fs() {
            return harness!
          },
          get inspect() {
            if (!needs.includes('inspect')) throw new Error(`case "${title}" reads the backend but does not list 'inspect' in needs`)
            return instance.inspect!
          },
          restart: async () => {
            if (!needs.includes('reopen')) throw new Error(`case "${title}" restarts the provider but does not list 'reopen' in needs`)
            const handleKey = harness!.handleKey
            await harness!.close()
            harness = null
            const provider = await instance.reopen!()
            harness = await FsalHarness.open(provider, { sizeLimitBytes: options.sizeLimitBytes, handleKey })
            return harness
          }
        }
        await body(scope)
      } finally {
        try {
          await harness?.close()
        } finally {
          await instance.cleanup()
        }
      }
    })
  }
}
