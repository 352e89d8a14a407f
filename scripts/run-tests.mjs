// Runs every test file with node:test (files listed explicitly: a bare
// `node --test` or a quoted glob would find no .ts files and run nothing).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const folders = process.argv.length > 2 ? process.argv.slice(2) : ['test', 'property-tests'];
const files = folders.flatMap((folder) =>
  readdirSync(folder)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(folder, f)),
);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
