import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['services/**/*.test.ts', 'scripts/**/*.test.ts', 'deploy/**/*.test.ts'],
    // The simulated fleet takes minutes: `npm run test:fleet` (vitest.fleet.config.ts).
    exclude: [...configDefaults.exclude, 'deploy/fleet/**'],
    // Integration tests start real processes and talk to MariaDB: give them room, and
    // keep the number of files running at once at the machine's two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    // Says what to run when MariaDB is not there, before any test starts.
    globalSetup: ['services/kit/testing/global-setup.ts'],
  },
});
