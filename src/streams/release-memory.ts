// Giving memory back after a burst of large requests.  Received chunks are
// external buffers that V8 frees only when a garbage collection finds them
// unreferenced, and glibc keeps freed heap memory for reuse: after 50
// concurrent 16 MiB mails a quiet daemon would hold most of that memory
// until the next burst of allocations triggers a collection.  So when the
// bytes in flight fall back to nothing after a large peak, one full
// collection runs and the C heap is trimmed.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimCHeap } from '../native/linux.js';

/** Peaks below this are left to V8's own schedule. */
const LARGE_PEAK = 64 << 20;

let collect: (() => void) | undefined;

function fullCollection(): void {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}

/** Tracks the bytes in flight; releases memory once a large peak has drained. */
export class MemoryReleaser {
  private peak = 0;
  private pending: NodeJS.Immediate | undefined;

  /** Called whenever the bytes in flight change. */
  update(bytesInFlight: number): void {
    if (bytesInFlight > this.peak) this.peak = bytesInFlight;
    if (bytesInFlight !== 0 || this.peak < LARGE_PEAK || this.pending !== undefined) return;
    // after the current event (the last answer's teardown) has let go of its buffers
    this.pending = setImmediate(() => {
      this.pending = undefined;
      this.peak = 0;
      fullCollection();
      trimCHeap();
    });
    this.pending.unref();
  }
}
