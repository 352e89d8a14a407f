// Errors that cross module boundaries (seen by the engine, the stages and the daemon).

/** A startup failure: print `message` and exit 1. */
export class ConfigError extends Error {}
