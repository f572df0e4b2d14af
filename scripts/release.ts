import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRelease } from '../deploy/release.js';

// npm run release [-- --out-dir DIR] [--no-tarball] [--link]
const { values } = parseArgs({
  options: {
    'out-dir': { type: 'string' },
    'no-tarball': { type: 'boolean', default: false },
    /** Hard-link node_modules files instead of copying them (fast; local fleets). */
    link: { type: 'boolean', default: false },
  },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
buildRelease({
  root,
  outDir: values['out-dir'],
  tarball: !values['no-tarball'],
  link: values.link,
  log: (line) => process.stderr.write(`release: ${line}\n`),
}).then(
  (r) => {
    process.stderr.write(`release: ${Object.keys(r.manifest.files).length} files, commit ${r.manifest.commit}${r.manifest.dirty ? ' (dirty tree)' : ''}, ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    process.stdout.write(`${r.dir}\n`);
  },
  (err: Error) => {
    process.stderr.write(`release failed: ${err.message}\n`);
    process.exit(1);
  },
);
