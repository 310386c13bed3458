import { defineConfig } from 'vitest/config'

// `npm run bench` runs the benchmark files through vitest so that they share the test helpers.
export default defineConfig({
  test: {
    include: ['bench/**/*.bench-run.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false
  }
})
