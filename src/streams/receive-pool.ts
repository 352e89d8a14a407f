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
//
// Every read costs a system call and a callback into JavaScript, so a
// large request should arrive in few reads: a read from a local client
// returns what the client's socket send buffer held (about 210 KB by
// default), and a window that is smaller splits it into two reads.  So a
// window is never cut short where a slab ends (a window that does not fit
// is carved from a fresh slab), and a connection whose window is used up
// or too small for what it may grow to gets a new one instead of the
// rest; the unused rest goes back to its slab when nothing was carved
// after it.

/** Bytes per slab, and the largest window. */
const SLAB = 256 * 1024;
/** The first read window of a connection: a 2 KB mail arrives in one read. */
const FIRST_WINDOW = 16 * 1024;
/** The smallest window a connection reads into once its request is complete. */
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
/** The slab small windows are carved from: of those in use, the one with most room left. */
let current: Slab | undefined;

function takeSlab(): Slab {
  const slab = free.pop() ?? new Slab();
  slab.carved = 0;
  return slab;
}

/** `slab` stops being the one carved from: kept for reuse if no window of it is held. */
function retire(slab: Slab | undefined): void {
  if (slab !== undefined && slab.users === 0 && free.length < KEEP_FREE) free.push(slab);
}

function releaseSlab(slab: Slab): void {
  if (--slab.users > 0 || slab === current) return;
  if (free.length < KEEP_FREE) free.push(slab);
}

/** Bytes `slab` has left to carve. */
const room = (slab: Slab | undefined): number => (slab === undefined ? 0 : SLAB - slab.carved);

/**
 * The slab a window of `size` bytes (at most SLAB) is carved from: the
 * current one if it has room, else a fresh one, which becomes the current
 * one if it is left with more room than that.
 */
function slabFor(size: number): Slab {
  if (room(current) >= size) return current!;
  const fresh = takeSlab();
  if (SLAB - size > room(current)) {
    retire(current);
    current = fresh;
  }
  return fresh;
}

/**
 * `rest` bytes at the end of a window that ends at `end` of `slab` are
 * not needed: if nothing was carved after them they are its slab's again
 * (and that slab becomes the current one if it now has the most room).
 */
function giveBack(slab: Slab, end: number, rest: number): boolean {
  if (slab.carved !== end) return false;
  slab.carved = end - rest;
  if (slab !== current && room(slab) > room(current)) {
    retire(current);
    current = slab;
  }
  return true;
}

/**
 * One connection's received bytes, in windows of the shared slabs.  The
 * first window is small; later ones grow with what the connection has
 * sent: the window for the next read is what is left of the last one, or
 * a new one of up to a slab when that allows a larger read, as long as all
 * windows taken stay within twice the bytes received plus the first
 * window, and, once `expectEnd` said where the request ends, reaching no
 * further than that.  So a request is read in few large reads while an
 * idle or small connection holds little.  After `stopGrowing` (the request
 * is complete) reads reuse the window that is left, so a client that
 * keeps sending cannot make it hold more.
 */
export class ReceiveArea {
  /** The slabs its windows were carved from, each once (however many windows it gave). */
  private readonly slabs: Slab[] = [];
  /** Where the next read goes: the unread rest of the last window taken. */
  private window: Buffer;
  /** The slab of `window`, and where in it `window` ends. */
  private slab!: Slab;
  private end = 0;
  private received = 0;
  /** Bytes of all windows taken so far, less what went back (what this connection holds of the slabs). */
  private taken = 0;
  /** Where (counted from the connection's first byte) windows end at most, once known. */
  private limit = Infinity;
  private growing = true;
  private released = false;

  constructor() {
    this.window = this.take(FIRST_WINDOW);
  }

  /** A window of `size` bytes (at most SLAB). */
  private take(size: number): Buffer {
    const slab = slabFor(size);
    const start = slab.carved;
    slab.carved = this.end = start + size;
    // a client whose every read is short gets a window per read, mostly
    // the same bytes given back and taken again: one entry per slab keeps
    // what it holds proportional to the slabs, not to its reads
    if (slab !== this.slab && !this.slabs.includes(slab)) {
      slab.users++;
      this.slabs.push(slab);
    }
    this.slab = slab;
    this.taken += size;
    return slab.bytes.subarray(start, this.end);
  }

  /** Bytes of the slabs this connection holds: the chunks it received and the window for the next read. */
  get reservedBytes(): number {
    return this.taken;
  }

  /** How many slabs its windows were carved from. */
  get slabCount(): number {
    return this.slabs.length;
  }

  /** Where the next read goes. */
  next(): Buffer {
    if (this.released) return this.window;
    const rest = this.window.length;
    if (!this.growing) {
      // once: a window to notice what else the client sends
      if (rest < MIN_WINDOW) {
        if (giveBack(this.slab, this.end, rest)) this.taken -= rest;
        this.window = this.take(MIN_WINDOW);
      }
      return this.window;
    }
    // as large as the bound allows if the rest goes back, and no larger than the request needs
    let size = Math.min(SLAB, this.limit - this.received, 2 * this.received + FIRST_WINDOW - (this.taken - rest));
    if (size <= rest) return this.window;
    if (giveBack(this.slab, this.end, rest)) this.taken -= rest;
    // a rest that stays taken counts against the bound
    else size = Math.min(size, 2 * this.received + FIRST_WINDOW - this.taken);
    if (size > rest || rest === 0) this.window = this.take(Math.max(size, MIN_WINDOW));
    return this.window;
  }

  /** The first `n` bytes of the window were read: they become a chunk (a view, not a copy). */
  filled(n: number): Buffer {
    const chunk = this.window.subarray(0, n);
    this.received += n;
    if (this.growing && !this.released) this.window = this.window.subarray(n);
    return chunk;
  }

  /**
   * The request ends `offset` bytes into the connection: later windows
   * reach no further than one byte past it (a read that returns fewer
   * bytes than its window asked for is the last one until the client
   * sends again).
   */
  expectEnd(offset: number): void {
    this.limit = offset + 1;
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
