import { defineConfig } from 'vitest/config';

/**
 * Three projects: `unit` needs nothing but Node, GNU tar and the sqlite3 CLI (seconds: `npm run test:unit`);
 * `integration` (also the disk-bound virtual tape tests and the property tests) and `e2e`
 * start DynamoDB Local and a local SQS once per project (global setup) and use OpenSSH's
 * server, GNU tar and osls. `npm test` runs all three.
 */
const EMULATORS = ['test/support/global-setup.ts'];
const UNIT = [
  'test/unit/**/*.test.ts',
  'test/tar/**/*.test.ts',
  'test/tape-format/**/*.test.ts',
  'test/tape/**/*.test.ts',
  'test/tapetown/**/*.test.ts',
  'test/ssh/parsers.test.ts',
  'test/ssh/parsers.property.test.ts',
];
// No emulators either, but bound by the disk (fsync per filemark) or many GNU tar runs.
const SLOW_UNIT = ['test/tape-format/random-trees.property.test.ts', 'test/tape/virtual-library.test.ts', 'test/tape-format/local-source-vtl.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The SDK's notice that it will need Node 22 from 2027 (see the notes) would repeat in
    // every worker and child process; it is said once in the README instead.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      // Unit test files share their workers (no isolation): they keep no global state, and a
      // fresh process per file would cost more than the tests themselves.
      { extends: true, test: { name: 'unit', include: UNIT, exclude: SLOW_UNIT, isolate: false } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/conformance/**/*.test.ts', 'test/ssh/**/*.test.ts', ...SLOW_UNIT],
          exclude: ['test/ssh/parsers.test.ts', 'test/ssh/parsers.property.test.ts'],
          globalSetup: EMULATORS,
        },
      },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], globalSetup: EMULATORS } },
    ],
  },
});
