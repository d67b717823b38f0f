/**
 * `npm run bundle:agent [-- --outfile FILE]`: the tape agent as one self-contained file
 * (dist/tape-agent.mjs by default) that needs only Node.js >= 20.19 at run time: no
 * node_modules, no npm on the tape server. Installed by deploy/install-agent.sh
 * (docs/operations.md, "Installing the agent").
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { build } from 'esbuild';

const o = new Command('bundle:agent').option('--outfile <file>', 'where to write the bundle', 'dist/tape-agent.mjs').parse().opts<{ outfile: string }>();

// CommonJS dependencies bundled into an ES module still ask for require and __dirname.
const banner = [
  "import { createRequire as __createRequire } from 'node:module';",
  "import { fileURLToPath as __fileURLToPath } from 'node:url';",
  "import { dirname as __dirnameOf } from 'node:path';",
  'const require = __createRequire(import.meta.url);',
  'const __filename = __fileURLToPath(import.meta.url);',
  'const __dirname = __dirnameOf(__filename);',
].join(' ');

const outfile = resolve(o.outfile);
await build({
  entryPoints: [resolve(import.meta.dirname, '../agent/main-entry.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20.19',
  format: 'esm',
  outfile,
  banner: { js: `#!/usr/bin/env node\n${banner}` },
  // ssh2's optional native speed-ups: it falls back to pure JavaScript without them.
  external: ['cpu-features', '*.node'],
  legalComments: 'external',
  logLevel: 'warning',
});
console.log(`tape agent bundle: ${outfile}`);
