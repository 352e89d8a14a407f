// The arithmetic of `npm run bench:recovery` (bench/lib/recovery-phases.ts):
// CPU per mail in the phases after a burst against the steady state before it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, recovery } from '../bench/lib/recovery-phases.js';

describe('bench recovery', () => {
  it('prices the steady state over all its phases and the excess of each phase after the burst', () => {
    const r = recovery(
      [
        { cpuUs: 200_000, mails: 1000 },
        { cpuUs: 600_000, mails: 3000 },
      ],
      [
        { cpuUs: 900_000, mails: 1000 },
        { cpuUs: 300_000, mails: 1000 },
        // cheaper than steady: counts as no excess, not as a credit
        { cpuUs: 100_000, mails: 1000 },
      ],
    );
    assert.equal(r.steadyUsPerMail, 200);
    assert.deepEqual(r.afterUsPerMail, [900, 300, 100]);
    assert.equal(r.excessUs, 700_000 + 100_000);
  });

  it('gives NaN for a phase without mails', () => {
    const r = recovery([{ cpuUs: 1000, mails: 10 }], [{ cpuUs: 500, mails: 0 }]);
    assert.ok(Number.isNaN(r.afterUsPerMail[0]));
  });

  it('takes the median of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});
