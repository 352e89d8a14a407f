// Envelope address syntax (docs/protocol.md): RFC 5321 lengths, dot-atom or
// quoted local part, LDH domain labels, ASCII only.

const ATOM_SPECIALS = new Set([...'()<>[]:;@\\,."'].map((ch) => ch.charCodeAt(0)));

function isAtomByte(b: number): boolean {
  return b >= 0x21 && b <= 0x7e && !ATOM_SPECIALS.has(b);
}

function isLetterOrDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function isValidLocalPart(s: string): boolean {
  const n = s.length;
  if (n < 1 || n > 64) return false;
  if (s.charCodeAt(0) === 0x22) {
    if (n <= 2 || s.charCodeAt(n - 1) !== 0x22) return false;
    for (let i = 1; i < n - 1; i++) {
      const b = s.charCodeAt(i);
      if (b < 0x21 || b > 0x7e || b === 0x22) return false;
    }
    return true;
  }
  let atomLength = 0;
  for (let i = 0; i < n; i++) {
    const b = s.charCodeAt(i);
    if (b === 0x2e) {
      if (atomLength === 0) return false;
      atomLength = 0;
    } else if (isAtomByte(b)) {
      atomLength++;
    } else {
      return false;
    }
  }
  return atomLength > 0;
}

function isValidDomain(s: string): boolean {
  const n = s.length;
  if (n > 255) return false;
  let labelStart = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && s.charCodeAt(i) !== 0x2e) {
      const b = s.charCodeAt(i);
      if (!isLetterOrDigit(b) && b !== 0x2d) return false;
      continue;
    }
    const length = i - labelStart;
    if (length < 1 || length > 63) return false;
    if (!isLetterOrDigit(s.charCodeAt(labelStart)) || !isLetterOrDigit(s.charCodeAt(i - 1))) return false;
    labelStart = i + 1;
  }
  return true;
}

/** True iff `address` (one char per byte) is a valid envelope address. */
export function isValidAddress(address: string): boolean {
  if (address.length > 254) return false;
  const at = address.lastIndexOf('@');
  if (at < 0) return false;
  return isValidLocalPart(address.slice(0, at)) && isValidDomain(address.slice(at + 1));
}
