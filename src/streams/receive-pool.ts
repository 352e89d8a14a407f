// Where clients' requests are read into: large slabs, reused from mail to
// mail, carved into read windows.  Node would otherwise allocate a fresh
// 64 KiB buffer for every read; for big mails those buffers are external
// memory that V8 answers with extra young-generation collections, which
// promote the buffers of mails still in flight, which in turn cost full
// (mark-compact) collections of the whole heap: one every 6-30 relayed
// 1 MiB mails, a third or more of their CPU.  With the slabs, the kernel
// copies a request straight into memory that is already there, and the
// relay writes it from the same place (docs/limits.md: memory grows with
// the bytes received, never with the announced length).

/** Bytes per slab. */
const SLAB = 256 * 1024;
/** The first read window of a connection: a 2 KB mail arrives in one read. */
const FIRST_WINDOW = 16 * 1024;
/** A window's unused rest smaller than this is not offered for the next read. */
const MIN_WINDOW = 2 * 1024;
/** Free slabs kept for reuse; more are left to the garbage collector. */
const KEEP_FREE = 32;

class Slab {
  readonly bytes = Buffer.allocUnsafeSlow(SLAB);
  /** Where the next window starts. */
  carved = 0;
  /** Windows carved from it that are still held. */
  users = 0;
}

const free: Slab[] = [];
let current: Slab | undefined;

function takeSlab(): Slab {
  const slab = free.pop() ?? new Slab();
  slab.carved = 0;
  return slab;
}

function releaseSlab(slab: Slab): void {
  if (--slab.users > 0 || slab === current) return;
  if (free.length < KEEP_FREE) free.push(slab);
}

/**
 * A window of `size` bytes (fewer at the end of a slab): from the slab
 * being carved, or from a fresh one.  The caller holds it until `releaseSlab`.
 */
function carve(size: number): { slab: Slab; window: Buffer } {
  let slab = current;
  if (slab === undefined || SLAB - slab.carved < Math.min(size, MIN_WINDOW * 4)) {
    if (slab !== undefined && slab.users === 0 && free.length < KEEP_FREE) free.push(slab);
    slab = current = takeSlab();
  }
  const end = Math.min(SLAB, slab.carved + size);
  const window = slab.bytes.subarray(slab.carved, end);
  slab.carved = end;
  slab.users++;
  return { slab, window };
}

/**
 * One connection's received bytes, in windows of the shared slabs.  The
 * first window is small; later ones grow with what the connection has
 * sent (up to a slab), so a request is read in few large reads while an
 * idle or small connection holds little.  After `stopGrowing` (the request
 * is complete) reads reuse the window that is left, so a client that
 * keeps sending cannot make it hold more.
 */
export class ReceiveArea {
  private readonly slabs: Slab[] = [];
  private window: Buffer;
  private received = 0;
  /** Bytes of all windows taken so far (what this connection holds of the slabs). */
  private taken = 0;
  private growing = true;
  private released = false;

  constructor() {
    this.window = this.take(FIRST_WINDOW);
  }

  private take(size: number): Buffer {
    const { slab, window } = carve(size);
    this.slabs.push(slab);
    this.taken += window.length;
    return window;
  }

  /** Bytes of the slabs this connection holds: the chunks it received and the window for the next read. */
  get reservedBytes(): number {
    return this.taken;
  }

  /** Where the next read goes. */
  next(): Buffer {
    return this.window;
  }

  /** The first `n` bytes of the window were read: they become a chunk (a view, not a copy). */
  filled(n: number): Buffer {
    const chunk = this.window.subarray(0, n);
    this.received += n;
    if (!this.growing || this.released) return chunk;
    const rest = this.window.length - n;
    this.window = rest >= MIN_WINDOW ? this.window.subarray(n) : this.take(Math.min(SLAB, Math.max(FIRST_WINDOW, this.received)));
    return chunk;
  }

  /** No more bytes are kept: later reads overwrite the current window. */
  stopGrowing(): void {
    this.growing = false;
  }

  /** The connection is over: nothing reads into or from these windows any more. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const slab of this.slabs) releaseSlab(slab);
    this.slabs.length = 0;
  }
}
