// The stdio of an exec/exec_raw child (src/streams/child-process.ts,
// docs/actions.md): pipes, not socket pairs (which Node's and execa's
// `'pipe'` would give), and for exec_raw one pipe as fd 1 and fd 2.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { firstValueFrom, forkJoin, map, mergeMap, reduce } from 'rxjs';
import { childProcess, type ChildSpec } from '../src/streams/child-process.js';
import { socketChunks } from '../src/streams/socket-chunks.js';

/** `TYPE INODE` of the child's fd 0, 1 and 2, one line each. */
const DESCRIBE_STDIO = 'for fd in 0 1 2; do /usr/bin/stat -L -c "%F %i" /proc/self/fd/$fd; done';

/** Runs the spec with stdin closed at once; the output and the exit status. */
function run(spec: Pick<ChildSpec, 'argv' | 'stderr'>): Promise<{ output: string; code: number }> {
  const child$ = childProcess({ ...spec, env: undefined, domain: spec.stderr === 'output' ? 'exec_raw' : 'exec', killGraceMs: 1_000 });
  return firstValueFrom(
    child$.pipe(
      mergeMap((child) => {
        child.stdin.end();
        const output$ = socketChunks(child.output).pipe(reduce((all: Buffer[], chunk) => [...all, chunk], []));
        return forkJoin([output$, child.exit$]);
      }),
      map(([chunks, status]) => ({ output: Buffer.concat(chunks).toString('latin1'), code: status.kind === 'exited' ? status.code : -status.signal })),
    ),
  );
}

function stdioOf(output: string): { type: string; inode: string }[] {
  return output
    .trim()
    .split('\n')
    .map((line) => {
      const [type = '', inode = ''] = line.split(' ');
      return { type, inode };
    });
}

describe('the stdio of an exec child', () => {
  it('exec_raw: fd 0 is a pipe, fd 1 and fd 2 are one other pipe', async () => {
    const { output, code } = await run({ argv: ['/bin/sh', '-c', DESCRIBE_STDIO], stderr: 'output' });
    assert.equal(code, 0);
    const [stdin, stdout, stderr] = stdioOf(output);
    assert.deepEqual([stdin?.type, stdout?.type, stderr?.type], ['fifo', 'fifo', 'fifo']);
    assert.equal(stdout?.inode, stderr?.inode, 'one pipe as fd 1 and 2');
    assert.notEqual(stdin?.inode, stdout?.inode);
  });

  it("exec: fd 0 and fd 1 are two pipes, fd 2 is the daemon's own stderr", async () => {
    const { output, code } = await run({ argv: ['/bin/sh', '-c', `${DESCRIBE_STDIO} 2>&1`], stderr: 'daemon' });
    assert.equal(code, 0);
    // `2>&1` makes stat's fd 2 the output pipe; the shell's own fd 2 is checked separately
    const [stdin, stdout] = stdioOf(output);
    assert.deepEqual([stdin?.type, stdout?.type], ['fifo', 'fifo']);
    assert.notEqual(stdin?.inode, stdout?.inode);
    const shell = await run({ argv: ['/bin/sh', '-c', '/usr/bin/stat -L -c "%d %i" /proc/$$/fd/2'], stderr: 'daemon' });
    const ours = spawnSync('/usr/bin/stat', ['-L', '-c', '%d %i', `/proc/${process.pid}/fd/2`], { encoding: 'latin1' }).stdout;
    assert.equal(shell.output, ours);
  });
});
