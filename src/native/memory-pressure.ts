// V8's memory-pressure notification, which Node does not offer to
// JavaScript.  A plain full collection (`gc()`) neither shrinks the young
// generation that grew under load (V8 does that only when it sees the
// allocation rate low for seconds) nor compacts the old generation to
// give its pages back; the notification does both, the way V8 answers an
// embedder that runs short of memory (measured here: an idle daemon 75 →
// 63 MB; one after 100 000 relayed mails 128 → 69 MB, but see
// src/streams/release-memory.ts for why it is not used after load).
//
// It is the public embedder API `v8::Isolate::MemoryPressureNotification`,
// reached through the symbols the node binary exports for native addons.
// It is called from one of koffi's worker threads: V8 then only records the
// request and runs the collection on the main thread as a task of the event
// loop.  (Called on the main thread through koffi, the collection would scan
// koffi's call stack as if it were the thread's and crash.)
import { packageRequire } from '../package-dir.cjs';

// required, not imported: see src/package-dir.cts
const koffi = packageRequire('koffi') as typeof import('koffi');

/** v8::MemoryPressureLevel::kCritical */
const CRITICAL = 2;

interface Notify {
  readonly isolate: unknown;
  readonly call: ReturnType<ReturnType<typeof koffi.load>['func']>;
}

let notify: Notify | null | undefined;

function lookUp(): Notify | null {
  try {
    const node = koffi.load(null);
    const getCurrent = node.func('void *_ZN2v87Isolate10GetCurrentEv()');
    const call = node.func('void _ZN2v87Isolate26MemoryPressureNotificationENS_19MemoryPressureLevelE(void *, int)');
    const isolate: unknown = getCurrent();
    return isolate === null ? null : { isolate, call };
  } catch {
    // a node binary that does not export V8's API
    return null;
  }
}

/**
 * Asks V8 for a memory-reducing full collection (critical memory pressure).
 * Returns false when this node binary does not offer it; otherwise `done`
 * is called once the request is handed over (the collection follows as a
 * task of the event loop, usually before `done`).
 */
export function requestMemoryReduction(done: () => void): boolean {
  if (notify === undefined) notify = lookUp();
  if (notify === null) return false;
  notify.call.async(notify.isolate, CRITICAL, () => done());
  return true;
}
