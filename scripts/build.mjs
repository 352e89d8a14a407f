// The second half of `npm run build`, after `tsc -p tsconfig.build.json`
// has compiled src/ into dist/ as CommonJS, one file per source file:
//   - dist/package.json says so ({"type":"commonjs"}): the sources are ES
//     modules (package.json "type": "module", which the tests run through
//     tsx), but an ES-module entry makes Node start its ES-module loader,
//     about 1 MB of an idle daemon; CommonJS `import()` of our own lazily
//     loaded modules compiles to a `require` at that point, so what is
//     loaded lazily stays lazy;
//   - dist/rx.js is the RxJS that src/rx.ts names, bundled into one file
//     with esbuild: each file Node loads costs memory, about 0.25 MB for
//     RxJS's 135 (docs/limits.md, "Memory");
//   - dist/rx.js exports plain values, not esbuild's getters: each of our
//     modules reads `rx_js_1.Observable` … at every use, and through the
//     getters (ours to RxJS's module, its own to the name) that read cost
//     30-50 ns instead of 6 (a loop of 8 million reads), a megamorphic
//     keyed load in perf's profile of a relayed mail;
//   - the commands are made executable.
// Like tsc's output, dist/rx.js carries no comments (test/build-output.test.ts)
// and has a source map.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');

writeFileSync(join(DIST, 'package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
await build({
  entryPoints: [join(ROOT, 'src', 'rx.ts')],
  outfile: join(DIST, 'rx.js'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  legalComments: 'none',
  sourcemap: true,
  logLevel: 'warning',
  // RxJS's exports never change after loading: copied once into plain properties
  footer: { js: "module.exports=Object.defineProperty(Object.assign({},module.exports),'__esModule',{value:true});" },
});
for (const command of ['main.js', 'send/bin.js']) chmodSync(join(DIST, command), 0o755);
