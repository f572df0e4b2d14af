import { defineConfig } from 'vitest/config';

// npm run test:fleet: the simulated fleet (four hosts, three releases, a few minutes).
export default defineConfig({
  test: {
    include: ['deploy/fleet/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
