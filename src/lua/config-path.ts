// The working directory around the config load (docs/configuration.md): the
// config's folder while it runs, `/` afterwards.
import { systemErrorText } from '../native/linux.js';
import { ConfigError } from '../errors.js';

/** The folder to change to, if the path has a `/` after its first byte. */
export function configDirectory(path: string): string | undefined {
  const slash = path.lastIndexOf('/');
  return slash > 0 ? path.slice(0, slash) : undefined;
}

export function changeDirectory(directory: string): void {
  try {
    process.chdir(directory);
  } catch (e) {
    throw new ConfigError(`Failed to change to ${directory}: ${systemErrorText(e)}`);
  }
}
