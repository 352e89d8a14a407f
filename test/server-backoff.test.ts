// The backoff of downstream servers on a virtual clock: who is skipped, for
// how long, and in which order the others are tried.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServerBackoff, serverName } from '../src/actions/server-backoff.js';
import { parseNumericAddress, type SocketAddress } from '../src/protocol/socket-address.js';

const [a, b, c] = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((host) => parseNumericAddress(host, 628)) as [SocketAddress, SocketAddress, SocketAddress];
const names = (list: readonly SocketAddress[]): string[] => list.map(serverName);

function setup(random = 0): { backoff: ServerBackoff; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { backoff: new ServerBackoff({ firstMs: 10_000, maxMs: 300_000 }, () => clock.now, () => random), clock };
}

describe('server backoff', () => {
  it('tries the servers in the listed order while none failed', () => {
    const { backoff } = setup();
    assert.deepEqual(names(backoff.plan([a, b, c], 'sequential')), ['10.0.0.1:628', '10.0.0.2:628', '10.0.0.3:628']);
  });

  it('skips a failed server for 10 s, doubling with each failure up to 5 min, and forgets it on an answer', () => {
    const { backoff, clock } = setup();
    const durations: number[] = [];
    for (let i = 0; i < 8; i++) {
      const state = backoff.failed('10.0.0.1:628', clock.now)!;
      durations.push(state.until - clock.now);
      assert.deepEqual(names(backoff.plan([a, b], 'sequential')), ['10.0.0.2:628']);
      clock.now = state.until;
      assert.deepEqual(names(backoff.plan([a, b], 'sequential')), ['10.0.0.1:628', '10.0.0.2:628'], 'tried again when the backoff ends');
    }
    assert.deepEqual(durations, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    assert.equal(backoff.answered('10.0.0.1:628'), 8);
    assert.deepEqual(backoff.snapshot(), []);
    assert.equal(backoff.failed('10.0.0.1:628', clock.now)!.until - clock.now, 10_000, 'back to 10 s after an answer');
  });

  it('counts the failures of mails that were in flight when the server went down once', () => {
    const { backoff, clock } = setup();
    const startedAt = clock.now;
    clock.now += 5;
    assert.equal(backoff.failed('10.0.0.1:628', startedAt)!.failures, 1);
    clock.now += 5;
    assert.equal(backoff.failed('10.0.0.1:628', startedAt), undefined, 'an attempt older than the backoff');
    assert.deepEqual(backoff.snapshot(), [{ server: '10.0.0.1:628', failures: 1, until: startedAt + 5 + 10_000 }]);
  });

  it('lets one mail probe a server whose backoff ended while the others still skip it', () => {
    const { backoff, clock } = setup();
    clock.now = backoff.failed('10.0.0.1:628', clock.now)!.until;
    assert.deepEqual(names(backoff.plan([a, b], 'sequential')), ['10.0.0.1:628', '10.0.0.2:628'], 'the probe');
    assert.deepEqual(names(backoff.plan([a, b], 'sequential')), ['10.0.0.2:628'], 'while the probe is on its way');
    const probeStarted = clock.now;
    clock.now += 20_000; // the probe's connect timeout
    assert.equal(backoff.failed('10.0.0.1:628', probeStarted)!.failures, 2, 'the probe failed');
    assert.deepEqual(names(backoff.plan([a, b], 'sequential')), ['10.0.0.2:628']);
    clock.now += 20_000; // second backoff over: leased to a mail that never gets to try it …
    assert.equal(names(backoff.plan([a, b], 'sequential'))[0], '10.0.0.1:628');
    clock.now += 10_000; // … so the lease ends after the first duration and another mail probes
    assert.deepEqual(names(backoff.plan([a, b], 'sequential')), ['10.0.0.1:628', '10.0.0.2:628']);
  });

  it('tries the server whose backoff ends first when all are skipped', () => {
    const { backoff, clock } = setup();
    backoff.failed('10.0.0.1:628', clock.now);
    backoff.failed('10.0.0.1:628', clock.now);
    clock.now += 1;
    backoff.failed('10.0.0.3:628', clock.now);
    backoff.failed('10.0.0.2:628', clock.now);
    backoff.failed('10.0.0.2:628', clock.now);
    assert.deepEqual(names(backoff.plan([a, b, c], 'sequential')), ['10.0.0.3:628']);
  });

  it("rotates the healthy servers from a random one with order='random'", () => {
    const plans = [0, 0.5, 0.99].map((random) => {
      const { backoff, clock } = setup(random);
      backoff.failed('10.0.0.2:628', clock.now);
      return names(backoff.plan([a, b, c], 'random'));
    });
    assert.deepEqual(plans, [
      ['10.0.0.1:628', '10.0.0.3:628'],
      ['10.0.0.3:628', '10.0.0.1:628'],
      ['10.0.0.3:628', '10.0.0.1:628'],
    ]);
  });
});
