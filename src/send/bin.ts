#!/usr/bin/env node
// The `qrelay-send` command: the same as `qrelay send`.
import { runSend } from './main.js';

process.exitCode = await runSend(process.argv.slice(2));
