// The pg driver, imported on the first connection attempt: a config that
// never talks to PostgreSQL does not pay for it (about 14 MB of resident
// memory for the module graph, measured on Node 20).
import type * as Pg from 'pg';

type Driver = typeof Pg;

let driver: Driver | undefined;

export async function pgDriver(): Promise<Driver> {
  driver ??= ((await import('pg')) as unknown as { default: Driver }).default;
  return driver;
}

/** A server error reported by pg (none can exist before the driver is loaded). */
export function isDatabaseError(e: unknown): e is Pg.DatabaseError {
  return driver !== undefined && e instanceof driver.DatabaseError;
}
