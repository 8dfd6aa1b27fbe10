import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that touch the kernel audit socket or dockerd share global state (one audit pid, one rule
    // list), so files run one at a time; tests within a file are sequential by default.
    fileParallelism: false,
    // ...and files outside test/unit hold the machine's lab lock while they run (test/setup/lab-lock.ts).
    setupFiles: ['test/setup/lab-lock.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The JSON report feeds .ci/run's one-line summary ("N passed, N failed, N skipped").
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest/results.json' },
  },
});
