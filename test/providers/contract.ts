// The provider contract: one suite that every StorageProvider passes, run the way NFS uses a
// provider, through a Volume and AegisFsal. A backend adds a fixture (see fixture.ts) and calls
// describeProviderContract from its own `<backend>.contract.test.ts`.

import { beforeAll, describe } from 'vitest'
import { caseDefiner, type DefineCase } from './case.js'
import { attributeCases } from './cases/attributes.js'
import { backendCases } from './cases/backend.js'
import { dataCases } from './cases/data.js'
import { linkCases } from './cases/links.js'
import { listingCases } from './cases/listing.js'
import { nameCases } from './cases/names.js'
import { namespaceCases } from './cases/namespace.js'
import { quotaCases } from './cases/quota.js'
import { restartCases } from './cases/restart.js'
import type { ProviderFixture } from './fixture.js'

export type { BackendInspector, ProviderCapabilities, ProviderFixture, ProviderInstance } from './fixture.js'

/** Defines the contract cases for the provider that `fixture` creates, under a describe block named `name`. */
export function describeProviderContract(name: string, fixture: ProviderFixture): void {
  describe(`${name} provider contract`, () => {
    const defineCase = caseDefiner(fixture)
    const titles = new Set<string>()
    const contractCase: DefineCase = (title, options, body) => {
      titles.add(title)
      defineCase(title, options, body)
    }
    dataCases(contractCase)
    attributeCases(contractCase)
    namespaceCases(contractCase)
    listingCases(contractCase)
    nameCases(contractCase)
    quotaCases(contractCase)
    linkCases(contractCase)
    restartCases(contractCase)
    backendCases(contractCase)

    // A limitation named after no case would skip nothing, silently. The check waits for
    // beforeAll, because vitest collects the cases of nested describe blocks after this one returns.
    beforeAll(() => {
      const unknown = Object.keys(fixture.serverLimitations ?? {}).filter((title) => !titles.has(title))
      if (unknown.length > 0) throw new Error(`${name}: serverLimitations names no contract case: ${unknown.join(', ')} (expected a case title as the cases define it)`)
    })
  })
}
