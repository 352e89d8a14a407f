// The Lua heap cap: an allocator for the Lua state that counts the bytes
// Lua holds and refuses to grow past a limit.  WebAssembly memory never
// shrinks, so the cap is what keeps one greedy script from leaving the
// daemon gigabytes larger for the rest of its life.

/** Default cap on what the Lua state may hold (`lua_memory_limit` in the config). */
export const DEFAULT_LUA_MEMORY_LIMIT = 256 * 1024 * 1024;
export const MIN_LUA_MEMORY_LIMIT = 16 * 1024 * 1024;
/** The WebAssembly build's memory cannot grow past 2 GiB; leave room for the rest. */
export const MAX_LUA_MEMORY_LIMIT = 1536 * 1024 * 1024;

type CFunction = (...args: (number | bigint)[]) => number;

/**
 * Counts Lua's allocations.  The allocator (a `lua_Alloc`) refuses growth
 * past `limit` only while `enforced` — i.e. while Lua code runs in protected
 * mode, where Lua turns the refusal into a "not enough memory" error;
 * the bridge's own pushes between calls are never refused (an error there
 * would be unprotected).  Lua answers most refusals with a full garbage
 * collection and a retry of the same request; unless that retry succeeds,
 * `exceeded` records that the cap was really reached.
 */
export class HeapLimit {
  used = 0;
  limit = DEFAULT_LUA_MEMORY_LIMIT;
  exceeded = false;
  private enforced = false;
  /** The request last refused, while its retry is still outstanding. */
  private refusedBlock = -1;
  private refusedSize = 0;

  /** A run of Lua code in protected mode begins: the cap applies until `end()`. */
  begin(): void {
    this.enforced = true;
    this.forget();
  }

  /** Forgets that the cap was reached (the run that reached it was dealt with). */
  forget(): void {
    this.exceeded = false;
    this.refusedBlock = -1;
  }

  end(): void {
    this.enforced = false;
  }

  /** Whether this run reached the cap: a refusal that no successful retry undid. */
  get reached(): boolean {
    return this.exceeded || this.refusedBlock !== -1;
  }

  /** What Lua held after the last collection `shouldCollect` asked for. */
  private afterCollection = 0;

  /**
   * Whether a full garbage collection is due before Lua goes on: the heap
   * is near the cap and has grown since the last such collection.  (Lua's
   * own collector runs late, and large strings built in buffers —
   * string.rep, table.concat, string.format — get no emergency collection
   * when an allocation is refused.)
   */
  shouldCollect(): boolean {
    return this.used > this.limit * 0.75 && this.used - this.afterCollection > this.limit / 8;
  }

  collected(): void {
    this.afterCollection = this.used;
  }

  /** The `lua_Alloc` function: (ud, ptr, osize, nsize) → new block or 0. */
  allocator(realloc: CFunction, free: CFunction): (ud: number, ptr: number, osize: number, nsize: number) => number {
    return (_ud, ptr, osize, nsize) => {
      // size_t arrives as a signed 32-bit value
      const newSize = nsize >>> 0;
      if (newSize === 0) {
        if (ptr !== 0) {
          this.used -= osize >>> 0;
          free(ptr);
        }
        return 0;
      }
      // for a new block, osize is the object type, not a size
      const growth = ptr === 0 ? newSize : newSize - (osize >>> 0);
      if (growth > 0) {
        const retry = ptr === this.refusedBlock && newSize === this.refusedSize;
        // anything but Lua's retry of a refused request means the script went on without it
        if (this.refusedBlock !== -1 && !retry) this.exceeded = true;
        this.refusedBlock = -1;
        if (this.enforced && this.used + growth > this.limit) {
          if (retry) this.exceeded = true;
          // whatever the refused run holds is garbage soon: collect before the next one
          this.afterCollection = 0;
          this.refusedBlock = ptr;
          this.refusedSize = newSize;
          return 0;
        }
      }
      const block = realloc(ptr, newSize);
      if (block !== 0) this.used += growth;
      return block;
    };
  }

  /** The log and error text for a run stopped by the cap. */
  message(): string {
    return `Lua memory limit of ${formatBytes(this.limit)} reached`;
  }
}

function formatBytes(n: number): string {
  const MiB = 1024 * 1024;
  return n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`;
}
