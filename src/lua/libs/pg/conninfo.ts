// libpq connection strings (PQconnectdb): `keyword = value …` with
// single-quoted values and backslash escapes, or `postgresql://` URIs.  The
// pg package only understands URIs (and mangles keyword/value strings), so
// both forms are parsed here, with libpq's rules and error texts.

/** The keywords libpq 15 knows; others are an error, as in libpq. */
const KEYWORDS = new Set([
  'service', 'user', 'password', 'passfile', 'channel_binding', 'connect_timeout', 'dbname', 'host',
  'hostaddr', 'port', 'client_encoding', 'options', 'application_name', 'fallback_application_name',
  'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
  'sslmode', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword', 'sslrootcert', 'sslcrl', 'sslcrldir',
  'sslsni', 'requirepeer', 'ssl_min_protocol_version', 'ssl_max_protocol_version', 'gssencmode',
  'krbsrvname', 'gsslib', 'replication', 'target_session_attrs', 'load_balance_hosts', 'require_auth',
  'sslcertmode', 'gssdelegation',
]);

/** A connection string libpq would refuse; the message is libpq's. */
export class ConninfoError extends Error {}

export type ConnectionOptions = ReadonlyMap<string, string>;

const URI_PREFIXES = ['postgresql://', 'postgres://'];

export function parseConninfo(text: string): ConnectionOptions {
  const prefix = URI_PREFIXES.find((p) => text.startsWith(p));
  return prefix === undefined ? parseKeywordValue(text) : parseUri(text, prefix.length);
}

function store(options: Map<string, string>, keyword: string, value: string, fromUri = false): void {
  // requiressl is the old spelling of sslmode=require
  if (keyword === 'requiressl') {
    options.set('sslmode', value.startsWith('1') ? 'require' : 'prefer');
    return;
  }
  if (!KEYWORDS.has(keyword)) {
    throw new ConninfoError(fromUri ? `invalid URI query parameter: "${keyword}"\n` : `invalid connection option "${keyword}"\n`);
  }
  options.set(keyword, value);
}

const isSpace = (c: string | undefined): boolean => c !== undefined && /[ \t\n\r\f\v]/.test(c);

function parseKeywordValue(text: string): ConnectionOptions {
  const options = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    if (isSpace(text[i])) {
      i++;
      continue;
    }
    const nameStart = i;
    while (i < text.length && text[i] !== '=' && !isSpace(text[i])) i++;
    const name = text.slice(nameStart, i);
    while (isSpace(text[i])) i++;
    if (text[i] !== '=') throw new ConninfoError(`missing "=" after "${name}" in connection info string\n`);
    i++;
    while (isSpace(text[i])) i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length) throw new ConninfoError('unterminated quoted string in connection info string\n');
        const c = text[i]!;
        if (c === '\\') {
          i++;
          if (i < text.length) value += text[i++];
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < text.length && !isSpace(text[i])) {
        if (text[i] === '\\') i++;
        if (i < text.length) value += text[i++];
      }
    }
    store(options, name, value);
  }
  return options;
}

function uriDecode(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '%') {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new ConninfoError(`invalid percent-encoded token: "${s}"\n`);
    const byte = parseInt(hex, 16);
    if (byte === 0) throw new ConninfoError(`forbidden value %00 in percent-encoded value: "${s}"\n`);
    bytes.push(byte);
    i += 2;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** `postgresql://[user[:password]@][host][:port][,…][/dbname][?keyword=value&…]` */
function parseUri(uri: string, start: number): ConnectionOptions {
  const options = new Map<string, string>();
  const storeDecoded = (keyword: string, raw: string, fromUri = false): void => store(options, keyword, uriDecode(raw), fromUri);
  let rest = uri.slice(start);

  const at = rest.search(/[@/]/);
  if (at >= 0 && rest[at] === '@') {
    const credentials = rest.slice(0, at);
    const colon = credentials.indexOf(':');
    const user = colon < 0 ? credentials : credentials.slice(0, colon);
    if (user !== '') storeDecoded('user', user);
    if (colon >= 0 && colon + 1 < credentials.length) storeDecoded('password', credentials.slice(colon + 1));
    rest = rest.slice(at + 1);
  }

  const hosts: string[] = [];
  const ports: string[] = [];
  let terminator: string | undefined;
  for (;;) {
    let host: string;
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close < 0) throw new ConninfoError(`end of string reached when looking for matching "]" in IPv6 host address in URI: "${uri}"\n`);
      if (close === 1) throw new ConninfoError(`IPv6 host address may not be empty in URI: "${uri}"\n`);
      host = rest.slice(1, close);
      rest = rest.slice(close + 1);
      const next = rest[0];
      if (next !== undefined && !':/?,'.includes(next)) {
        throw new ConninfoError(`unexpected character "${next}" at position ${uri.length - rest.length + 1} in URI (expected ":" or "/"): "${uri}"\n`);
      }
    } else {
      const end = rest.search(/[:/?,]/);
      host = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? '' : rest.slice(end);
    }
    hosts.push(host);
    terminator = rest[0];
    let port = '';
    if (terminator === ':') {
      const end = rest.slice(1).search(/[/?,]/);
      port = end < 0 ? rest.slice(1) : rest.slice(1, end + 1);
      rest = end < 0 ? '' : rest.slice(end + 1);
      terminator = rest[0];
    }
    ports.push(port);
    if (terminator !== ',') break;
    rest = rest.slice(1);
  }
  if (hosts.join(',') !== '') storeDecoded('host', hosts.join(','));
  if (ports.join(',') !== '') storeDecoded('port', ports.join(','));

  if (terminator === '/') {
    const query = rest.indexOf('?');
    const dbname = query < 0 ? rest.slice(1) : rest.slice(1, query);
    if (dbname !== '') storeDecoded('dbname', dbname);
    rest = query < 0 ? '' : rest.slice(query);
  }
  if (rest.startsWith('?')) {
    const parameters = rest.slice(1).split('&');
    // a trailing `&` (or a bare `?`) ends the list
    if (parameters.at(-1) === '') parameters.pop();
    for (const parameter of parameters) {
      const parts = parameter.split('=');
      if (parts.length > 2) throw new ConninfoError(`extra key/value separator "=" in URI query parameter: "${parts[0]}"\n`);
      if (parts.length < 2) throw new ConninfoError(`missing key/value separator "=" in URI query parameter: "${parameter}"\n`);
      const keyword = uriDecode(parts[0]!);
      const value = uriDecode(parts[1]!);
      // JDBC's spelling, accepted by libpq
      if (keyword === 'ssl' && value === 'true') options.set('sslmode', 'require');
      else store(options, keyword, value, true);
    }
  }
  return options;
}
