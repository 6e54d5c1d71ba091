import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Conformance and end-to-end suites start real servers on fixed loopback ports:
    // files run one at a time so two suites never fight over a port or the 2 cores.
    fileParallelism: false,
    reporters: ['default'],
  },
});
