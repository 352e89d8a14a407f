// Giving memory back after a burst of large requests.  Received chunks are
// external buffers that V8 frees only when a garbage collection finds them
// unreferenced, and glibc keeps freed heap memory for reuse: after 50
// concurrent 16 MiB mails a quiet daemon would hold most of that memory
// until the next burst of allocations triggers a collection.  So when the
// bytes in flight fall back to nothing after a large peak, a full
// collection runs and the C heap is trimmed.
//
// One collection and an immediate trim are not enough: V8 frees the backing
// stores of dead buffers on a background thread after the collection (its
// array-buffer sweeper), and the last connections' buffers may still be
// referenced while their sockets close.  A trim that runs before they are
// freed gives nothing back, and no later collection comes while the daemon
// is idle (measured: 50 × 16 MiB left 660 MB resident of 860 MB, idle 84).
// So the trim waits a moment after each collection, and while the buffers
// are still there a few more rounds follow, with growing pauses.
import { packageRequire } from '../package-dir.cjs';
import { trimCHeap } from '../native/linux.js';
import { requestMemoryReduction } from '../native/memory-pressure.js';

/** Peaks below this are left to V8's own schedule. */
export const LARGE_PEAK = 64 << 20;

/** Buffers still held after a round: below this the release is done. */
const SETTLED_BYTES = LARGE_PEAK / 2;

/** Pause between a collection and its trim, doubled each round: 50 ms … 1.6 s, 3.15 s in all. */
const FIRST_PAUSE_MS = 50;
const MAX_ROUNDS = 6;

/** What the releaser does to the process (replaced in tests). */
export interface ReleaseEffects {
  /** A full garbage collection. */
  collect(): void;
  /** A memory-reducing full collection (young generation shrunk, old one compacted); `done` after it. */
  reduce(done: () => void): void;
  /** Returns freed C heap memory to the kernel. */
  trim(): void;
  /** Bytes of ArrayBuffer backing stores alive now. */
  bufferBytes(): number;
  /** Runs `f` once after `ms` (0: after the current event) without keeping the process alive. */
  later(f: () => void, ms: number): void;
}

let gc: (() => void) | undefined;

function fullCollection(): void {
  if (gc === undefined) {
    // node:v8 and node:vm (about 1 MB) are loaded at the first collection:
    // a daemon that never sees a large burst never needs them
    (packageRequire('node:v8') as typeof import('node:v8')).setFlagsFromString('--expose-gc');
    gc = (packageRequire('node:vm') as typeof import('node:vm')).runInNewContext('gc') as () => void;
  }
  gc();
}

export const processEffects: ReleaseEffects = {
  collect: fullCollection,
  reduce: (done) => {
    if (requestMemoryReduction(done)) return;
    fullCollection();
    done();
  },
  trim: trimCHeap,
  bufferBytes: () => process.memoryUsage().arrayBuffers,
  later: (f, ms) => void (ms === 0 ? setImmediate(f) : setTimeout(f, ms)).unref(),
};

/** Startup is over: compilation scratch memory goes back to the kernel soon after. */
const AFTER_STARTUP_MS = 1000;
/** Pause between the memory reduction and the trim (V8 frees some pages on background threads). */
const REDUCE_PAUSE_MS = 100;

/**
 * Once, soon after startup: loading the config, the Lua runtime and the
 * WebAssembly modules grows V8's young generation to several MB, which an
 * idle daemon never shrinks (V8 does so only in a collection that sees a
 * low allocation rate, and an idle daemon runs none), and leaves freed
 * memory in glibc's heaps (largely in the arenas of V8's compiler threads),
 * which glibc keeps for reuse.  So V8 is asked for a memory-reducing
 * collection, then the C heap is trimmed.  Measured here: 80 → 72 MB
 * resident for an idle daemon with the trim alone, 75 → 63 MB with both.
 *
 * Not done again after load: a full collection in a quiet pause makes V8
 * drop the optimised code of much of the mail path, so the next burst
 * runs unoptimised until about 100-180 functions are compiled again
 * (measured: after this reduction in a 4 s pause, 2 KB mails cost 2-4x the
 * CPU in the first half second and 1.2-1.9 CPU-seconds more in all; the
 * young generation it shrank grew back within about 2 s).  So the
 * memory V8 grew under load is kept for the next burst.  (The same drop
 * follows the collections V8 makes itself during a burst of large mails,
 * and the collection of the release after such a burst.)
 *
 * Why: optimised code holds the objects it was specialised on weakly, and
 * objects made per mail die in the pause, with their hidden classes: a
 * class's instances' map dies with its last instance even when the
 * constructor sets every field (maps of object literals survive, held by
 * the literal's template), and V8's own collections do the same.  Traced
 * (--log-maps against the dropped code): our per-mail classes, Node's
 * tick objects, WriteWraps, timers and sockets, RxJS's subscribers.
 * Keeping the last instance of each of our 13 per-mail classes alive cut
 * the functions dropped from 48 to 27 but measured no clear gain in
 * bench:recovery (excess 0.67 vs 1.11 and 0.61 vs 0.51 CPU-s).  It is not only closures made
 * per mail (whose code V8 keeps only while one of them lives): with the
 * mail path's stages made of methods (src/actions/connect.ts,
 * src/operators/serve-client.ts), a full collection (gc()) 4 s after load
 * still marked 66-72 optimised functions for deoptimisation with the
 * reason "weak objects", module functions, methods and Node's own stream
 * code among them, and the next 2 s of 2 KB mails compiled 103-169 functions again
 * (`--trace-opt --trace-deopt`; `--retain-maps-for-n-gc=1000` changed
 * nothing); this memory-reducing collection: 136.  Tried: this reduction
 * 2 s after the last mail, without the flags of main.ts's first line,
 * against the daemon as it is, in the bench's 2 KB and 1 MiB rounds (each
 * begins after such a pause): 1.69x and 1.65x the CPU per mail (same run,
 * median of 5 rounds, 4 higher), for RSS 10 s after 100 000 mails of
 * idle + 8 MB instead of + 23.
 */
export function releaseAfterStartup(effects: ReleaseEffects = processEffects): void {
  const trimSoon = (): void => effects.later(() => effects.trim(), REDUCE_PAUSE_MS);
  effects.later(() => effects.reduce(trimSoon), AFTER_STARTUP_MS);
}

/**
 * Tracks the bytes in flight; releases memory once a large peak has drained.
 * At most MAX_ROUNDS collections per large peak; a round that finds requests
 * in flight again stops, and the next drain resumes the release.
 */
export class MemoryReleaser {
  private peak = 0;
  private inFlight = 0;
  private rounds = 0;
  private busy = false;

  constructor(private readonly effects: ReleaseEffects = processEffects) {}

  /** Called whenever the bytes in flight change. */
  update(bytesInFlight: number): void {
    this.inFlight = bytesInFlight;
    if (bytesInFlight > this.peak) this.peak = bytesInFlight;
    if (bytesInFlight !== 0 || this.peak < LARGE_PEAK || this.busy) return;
    // after the current event (the last answer's teardown) has let go of its buffers
    this.busy = true;
    this.effects.later(() => this.collect(), 0);
  }

  private collect(): void {
    if (this.inFlight !== 0) {
      this.busy = false;
      return;
    }
    this.effects.collect();
    this.effects.later(() => this.trim(), FIRST_PAUSE_MS << this.rounds);
  }

  private trim(): void {
    this.effects.trim();
    this.rounds++;
    if (this.effects.bufferBytes() < SETTLED_BYTES || this.rounds >= MAX_ROUNDS) {
      this.peak = 0;
      this.rounds = 0;
      this.busy = false;
      return;
    }
    this.effects.later(() => this.collect(), 0);
  }
}
