import { scanLocalDirectory } from '../../src/lib/tape-format/index.ts';
import { writeFileSync } from 'node:fs';
const m = []; for await (const e of scanLocalDirectory(process.argv[2]!)) m.push(e);
writeFileSync('/tmp/tfbench-manifest.json', JSON.stringify(m));
