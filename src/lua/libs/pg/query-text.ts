// What is sent to the server for the SQL text and the parameters a script
// passes (docs/pg.md), and what scripts get back.  Lua strings arrive
// as byte strings; the pg package speaks UTF-8 (client_encoding UTF8), so
// the bytes must be UTF-8.  libpq takes C strings: a NUL byte ends the text.

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text that is not UTF-8 cannot be sent through the pg package. */
export class NotUtf8Error extends Error {}

/** A Lua byte string as the text the server gets, cut at the first NUL as libpq does. */
export function serverText(bytes: string, what: string): string {
  const end = bytes.indexOf('\0');
  try {
    return utf8.decode(Buffer.from(end < 0 ? bytes : bytes.slice(0, end), 'latin1'));
  } catch {
    throw new NotUtf8Error(`${what} is not valid UTF-8\n`);
  }
}

/** Text from the server as the bytes a Lua string holds. */
export function luaBytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/**
 * A number parameter: the shortest text that reads back as the same double,
 * in fixed notation for decimal exponents -4 to 15 and as `d.ddde±XX`
 * otherwise (the {fmt} library's default the original uses: `42`, `0.1`,
 * `1000000000000000`, `1e+16`, `1e-05`).
 */
export function numberText(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value < 0 ? '-inf' : 'inf';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  // toExponential() without digits gives the shortest round-trip digits
  const [mantissa, exponentText] = value.toExponential().split('e') as [string, string];
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
    return `${sign}${digits[0]}${fraction}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  if (exponent >= digits.length - 1) return `${sign}${digits}${'0'.repeat(exponent - digits.length + 1)}`;
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

/** A parameter as pg sends it: nil → NULL, numbers formatted, strings as text. */
export function parameterText(value: string | number | undefined, index: number): string | null {
  if (value === undefined) return null;
  if (typeof value === 'number') return numberText(value);
  return serverText(value, `query parameter $${index}`);
}
