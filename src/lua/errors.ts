/** A startup failure: print `message` and exit 1. */
export class ConfigError extends Error {}
