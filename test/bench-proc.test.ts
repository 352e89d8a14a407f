// The bench's reading of /proc (bench/lib/proc.ts): the page faults it
// charges a relay are those of the relay's process tree.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { treeFaults } from '../bench/lib/proc.js';

const PAGES = (64 << 20) / 4096;

describe('bench: page faults of a process tree', () => {
  it('counts the pages a child touches in fresh memory (a grandchild, below the process asked about)', async () => {
    // a shell whose child node touches 64 MiB of fresh memory when told to
    const script = "process.stdout.write('a'); process.stdin.once('data', () => { Buffer.alloc(64 << 20, 1); process.stdout.write('b'); });";
    // (the `; exit` keeps sh from replacing itself with node)
    const shell = spawn('sh', ['-c', `${JSON.stringify(process.execPath)} -e "${script}"; exit`], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [first] = (await once(shell.stdout, 'data')) as [Buffer];
      assert.equal(first.toString(), 'a');
      const before = treeFaults(shell.pid!);
      shell.stdin.write('go\n');
      const [second] = (await once(shell.stdout, 'data')) as [Buffer];
      assert.equal(second.toString(), 'b');
      const after = treeFaults(shell.pid!);
      assert.ok(after - before >= PAGES * 0.9, `${after - before} faults for ${PAGES} pages`);
    } finally {
      // node ends with its input, then the shell
      shell.stdin.end();
      await once(shell, 'exit');
    }
  });
});
