// The provider contract: one suite that every StorageProvider passes, run the way NFS uses a
// provider, through a Volume and AegisFsal. A backend adds a fixture (see fixture.ts) and calls
// describeProviderContract from its own `<backend>.contract.test.ts`.

import { describe } from 'vitest'
import { caseDefiner } from './case.js'
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
    const contractCase = caseDefiner(fixture)
    dataCases(contractCase)
    attributeCases(contractCase)
    namespaceCases(contractCase)
    listingCases(contractCase)
    nameCases(contractCase)
    quotaCases(contractCase)
    linkCases(contractCase)
    restartCases(contractCase)
    backendCases(contractCase)
  })
}
