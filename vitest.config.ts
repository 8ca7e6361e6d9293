import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds build/ first if it is stale: the processes tests start run compiled JavaScript.
    globalSetup: ['test/global-setup.ts'],
    // Integration tests boot whole platforms of real processes; on two cores a
    // pair of files at a time keeps heartbeats honest while still overlapping.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
