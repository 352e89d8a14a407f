#!/usr/bin/env node
// The `qrelay-send` command: the same as `qrelay send`.
import { runSend } from './main.js';

// (no top-level await: dist/ is CommonJS; a rejection still ends the process)
void runSend(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
