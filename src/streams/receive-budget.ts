// The global budget of request bytes in flight: what all connections hold
// of their requests, from the first byte received until the connection
// ends.  Beyond it the daemon stops reading from the largest unfinished
// requests (the kernel's socket buffers then hold their clients back) and
// resumes them when others have finished.  One request always keeps
// reading, so the budget can be exceeded by at most one request.
import { MemoryReleaser } from './release-memory.js';

/** What reading can be paused and resumed on (a net.Socket). */
export interface Pausable {
  pause(): void;
  resume(): void;
}

/** One connection's part of the budget. */
export interface BudgetShare {
  /** Counts `bytes` more of the request as received. */
  add(bytes: number): void;
  /** The request is complete: it reads no more (its bytes count until release). */
  doneReading(): void;
  /** The connection is over: its bytes leave the budget. */
  release(): void;
  /** Reading is paused by the budget (time spent so is not the client's). */
  readonly held: boolean;
  /** How often the budget has let this connection read again after holding it. */
  readonly resumes: number;
}

class Share implements BudgetShare {
  bytes = 0;
  held = false;
  resumes = 0;
  reading = true;
  released = false;

  constructor(
    private readonly budget: ReceiveBudget,
    readonly source: Pausable,
  ) {}

  add(bytes: number): void {
    this.bytes += bytes;
    this.budget.added(this, bytes);
  }

  doneReading(): void {
    if (!this.reading) return;
    this.reading = false;
    this.budget.stoppedReading(this);
  }

  release(): void {
    if (this.released) return;
    this.doneReading();
    this.released = true;
    this.budget.released(this);
  }
}

/** Default: a quarter of the RAM, at most 1 GiB. */
export function defaultReceiveBudget(totalMemory: number): number {
  return Math.min(2 ** 30, Math.floor(totalMemory / 4));
}

export class ReceiveBudget {
  private used = 0;
  private readonly releaser = new MemoryReleaser();
  /** Shares still reading their request. */
  private readonly reading = new Set<Share>();
  private heldCount = 0;

  constructor(readonly limit: number) {}

  /** Bytes of requests currently held by connections. */
  get bytesInFlight(): number {
    return this.used;
  }

  open(source: Pausable): BudgetShare {
    const share = new Share(this, source);
    this.reading.add(share);
    return share;
  }

  /** @internal (Share) */
  added(share: Share, bytes: number): void {
    this.used += bytes;
    this.releaser.update(this.used);
    if (this.used > this.limit && share.reading) this.holdLargest();
  }

  /** @internal (Share) */
  stoppedReading(share: Share): void {
    this.reading.delete(share);
    if (share.held) this.resume(share);
    this.keepOneReading();
  }

  /** @internal (Share) */
  released(share: Share): void {
    this.used -= share.bytes;
    this.releaser.update(this.used);
    if (this.heldCount > 0 && this.used <= this.limit) {
      for (const s of this.reading) if (s.held) this.resume(s);
    }
    this.keepOneReading();
  }

  /** With every reader held, the one furthest along reads on (else nothing could ever finish). */
  private keepOneReading(): void {
    if (this.heldCount === 0 || this.heldCount < this.reading.size) return;
    let furthest: Share | undefined;
    for (const s of this.reading) if (furthest === undefined || s.bytes > furthest.bytes) furthest = s;
    if (furthest !== undefined) this.resume(furthest);
  }

  /** Pauses the largest unheld reader, unless it is the last one reading. */
  private holdLargest(): void {
    let largest: Share | undefined;
    let unheld = 0;
    for (const s of this.reading) {
      if (s.held) continue;
      unheld++;
      if (largest === undefined || s.bytes > largest.bytes) largest = s;
    }
    if (largest === undefined || unheld < 2) return;
    largest.held = true;
    this.heldCount++;
    largest.source.pause();
  }

  private resume(share: Share): void {
    share.held = false;
    share.resumes++;
    this.heldCount--;
    share.source.resume();
  }
}
