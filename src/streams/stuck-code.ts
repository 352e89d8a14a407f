// Code that holds the main thread without end, found and stopped: the
// event loop beats at least every second, and each beat pushes a
// terminating StopTimer (src/native/stop-timers.ts) `limitMs` further;
// when no beat comes for that long, the timer stops whatever runs, and
// the next beat tells.  A killing StopTimer, pushed twice `limitMs`
// further by each beat, ends the process when not even the stop brings
// the beat back (code blocked in a system call).
//
// The stopped code is unwound without its `finally` blocks, and Node's
// own bookkeeping of the callback it ran in is left one entry deep: Node
// would end the process on that ("async hook stack has become
// corrupted") unless its check is off, which the command line of
// dist/main.js does (`--no-force-async-hooks-checks`; docs/limits.md).
// What the stopped code was doing stays half done: the caller must treat
// its state as lost (the daemon abandons the Lua state and ends the
// process once the mails in flight are done).
import { performance } from 'node:perf_hooks';
import { Observable } from '../rx.js';
import { StopTimer } from '../native/stop-timers.js';

/** How often the event loop beats at most (ms). */
const BEAT_MS = 1000;

/**
 * Emits, each time the main thread was held for `limitMs` without
 * returning to the event loop and the code holding it was stopped, how
 * long it had been held (ms, from the beat before).  When no beat comes
 * for twice `limitMs`, the kernel kills the process.
 * Never emits where the node binary does not offer the termination
 * (StopTimer.terminating; then nothing is killed either).  Never completes
 * or errors.  Unsubscribing stops the beat and deletes both timers.  The
 * beat's interval does not keep the process alive.
 */
export function stuckCode$(limitMs: number): Observable<number> {
  const killMs = 2 * limitMs;
  return new Observable<number>((subscriber) => {
    const terminating = StopTimer.terminating();
    if (terminating === undefined) return undefined;
    const killing = StopTimer.killing();
    let lastBeat = performance.now();
    terminating.arm(limitMs);
    killing?.arm(killMs);
    const beat = setInterval(
      () => {
        const now = performance.now();
        if (terminating.expired()) subscriber.next(now - lastBeat);
        lastBeat = now;
        terminating.arm(limitMs);
        killing?.arm(killMs);
      },
      Math.min(BEAT_MS, limitMs / 4),
    );
    beat.unref();
    return () => {
      clearInterval(beat);
      terminating.close();
      killing?.close();
    };
  });
}

/**
 * Resolves with how long code held the process (ms) if code was stopped
 * so (stuckCode$) before `work` settled; otherwise never.  Stops watching
 * when `work` settles either way.  For a phase that has no event loop of
 * its own to come back to, such as loading the config at startup.
 */
export function stuckWhile(work: Promise<unknown>, limitMs: number): Promise<number> {
  return new Promise<number>((resolve) => {
    const watch = stuckCode$(limitMs).subscribe((heldMs) => {
      watch.unsubscribe();
      resolve(heldMs);
    });
    const settled = (): void => watch.unsubscribe();
    work.then(settled, settled);
  });
}
