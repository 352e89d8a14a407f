// Command-line options of the bench scripts, from `npm run X -- --name value`
// or from `npm run X --name value` (npm turns the latter into npm_config_name).

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`) || ['true', '1'].includes(process.env[`npm_config_${name}`] ?? '');
}

/** The text given for `--name`; undefined when not given (or given as a bare flag). */
function optionText(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  const text = i >= 0 ? process.argv[i + 1] : process.env[`npm_config_${name}`];
  return text === undefined || text === '' || text === 'true' ? undefined : text;
}

export function numberOption(name: string, fallback: number): number {
  const text = optionText(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(text)}`);
  return value;
}

/** A comma-separated list option (`--name a,b`); undefined when not given. */
export function listOption(name: string): string[] | undefined {
  return optionText(name)
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
