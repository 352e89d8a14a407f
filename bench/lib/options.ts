// Command-line options of the bench scripts, from `npm run X -- --name value`
// or from `npm run X --name value` (npm turns the latter into npm_config_name).

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`) || ['true', '1'].includes(process.env[`npm_config_${name}`] ?? '');
}

export function numberOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const text = i >= 0 ? process.argv[i + 1] : process.env[`npm_config_${name}`];
  const value = Number(text);
  if (text === undefined || text === '' || text === 'true') return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(text)}`);
  return value;
}
