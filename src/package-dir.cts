// Where qrelay's own files are, and a `require` that resolves from there:
// the same for the CommonJS that `npm run build` emits into dist/ and for
// the ES-module sources that the tests run through tsx.  This one file is
// CommonJS in both (`.cts`), so it knows its folder by `__dirname`;
// `import.meta`, the ES-module way, is not valid in CommonJS.
import { join } from 'node:path';

/** The package's folder: package.json, src/lua/, node_modules/ (dist/ and src/ are one level below it). */
export const PACKAGE_DIR = join(__dirname, '..');

/**
 * `require`, for Node's own modules loaded at first use and for the
 * CommonJS packages koffi and wasmoon: in the sources as in dist/ it loads
 * the very same file (an `import` would take koffi's ES-module build, and
 * have Node scan wasmoon's file for its exports).
 */
export const packageRequire: NodeJS.Require = require;
