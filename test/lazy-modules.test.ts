// Node's own modules that only some configs need are loaded only for those
// (docs/limits.md, "Memory"): the HTTP server with metrics_listen(), zlib
// (the Pond datagram's checksum) with a log_server, crypto with the sodium
// library, v8 and vm with the first collection after a large burst,
// child_process (and the dgram it brings) with the first exec/exec_raw.
// Node's export lexer for CommonJS files imported by ES modules is never
// loaded: the daemon's dist/ is CommonJS (scripts/build.mjs).  The real
// daemon runs with a preloaded module (`--require`: `--import` would make
// Node load the entry through its ES-module loader) that writes Node's list
// of the modules it loaded, and which files, when the process exits.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MAIN, removeDir, startDaemon, tempDir } from './helpers/daemon.js';
import { udpReceiver } from './helpers/datagram-receiver.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

const DIST = dirname(MAIN);
const LAZY = ['http', 'zlib', 'crypto', 'v8', 'vm', 'child_process', 'dgram', 'internal/deps/cjs-module-lexer/lexer'] as const;

interface Loaded {
  /** Node's own modules (`NativeModule name`, `Internal Binding name`). */
  readonly modules: readonly string[];
  /** The files loaded as CommonJS. */
  readonly files: readonly string[];
  /** The entry's file when it ran as CommonJS. */
  readonly main: string | null;
}

/** Runs `config`, sends one mail, stops; returns what the daemon had loaded. */
async function daemonLoads(dir: string, config: string, env: NodeJS.ProcessEnv = {}): Promise<Loaded> {
  const hook = join(dir, 'record-modules.cjs');
  const list = join(dir, 'modules.json');
  writeFileSync(
    hook,
    `const { writeFileSync } = require('node:fs');\nprocess.on('exit', () => writeFileSync(${JSON.stringify(list)}, JSON.stringify({ modules: process.moduleLoadList, files: Object.keys(require.cache), main: process.mainModule?.filename ?? null })));\n`,
  );
  const daemon = await startDaemon({ dir, config, env, command: [process.execPath, '--require', hook, MAIN] });
  try {
    assert.match(await send(join(dir, 'qrelay.sock'), qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@example.org', ['b@example.org'])), /^\d+:K/);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  return JSON.parse(readFileSync(list, 'utf8')) as Loaded;
}

/** Runs `config`, sends one mail, stops; returns which of LAZY the daemon had loaded. */
async function loadedModules(dir: string, config: string, env: NodeJS.ProcessEnv = {}): Promise<Set<string>> {
  const { modules } = await daemonLoads(dir, config, env);
  return new Set(LAZY.filter((name) => modules.includes(`NativeModule ${name}`)));
}

describe("Node's modules a config does not use are not loaded", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));
  const dir = (): string => {
    const d = tempDir('qrelay-lazy-');
    dirs.push(d);
    return d;
  };

  it('a config that relays without metrics, log server or sodium loads none of them', async () => {
    const config = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)\n`;
    assert.deepEqual([...(await loadedModules(dir(), config))], []);
  });

  it('the daemon runs as CommonJS, with RxJS in one file of dist/', async () => {
    const config = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)\n`;
    const { files, main } = await daemonLoads(dir(), config);
    assert.equal(main, MAIN);
    assert.ok(files.includes(join(DIST, 'rx.js')), 'dist/rx.js');
    assert.ok(files.includes(join(DIST, 'daemon.js')), 'dist/daemon.js');
    assert.deepEqual(
      files.filter((file) => file.includes('/node_modules/rxjs/')),
      [],
    );
  });

  it('exec_raw loads child_process with its first child', async () => {
    const config = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:exec_raw('/bin/true') end)\n`;
    const loaded = await loadedModules(dir(), config);
    assert.ok(loaded.has('child_process'));
    assert.ok(!loaded.has('internal/deps/cjs-module-lexer/lexer'));
  });

  it('metrics_listen, log_server and sodium load what they need', async () => {
    const pond = await udpReceiver(4);
    try {
      const config = `local dir = os.getenv('TEST_DIR')
metrics_listen(dir .. '/metrics.sock')
log_server = os.getenv('LOG_SERVER')
local key = sodium.randombytes(32)
qmqp_listen(dir .. '/qrelay.sock', function(m) return m:discard() end)
`;
      const loaded = await loadedModules(dir(), config, { LOG_SERVER: pond.logServer });
      // (prom-client, loaded with metrics_listen, loads v8 itself)
      for (const name of ['crypto', 'http', 'zlib']) assert.ok(loaded.has(name), name);
      assert.equal((await pond.next()).readUInt32BE(0), 0x63046103);
    } finally {
      await pond.close();
    }
  });
});
