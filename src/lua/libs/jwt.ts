// JavaScript side of the `jwt` library: base64url (no padding) and the
// Ed25519 signature over `header.payload`.
import type { LuaLibrary } from '../library.js';
import { bytesOf } from '../library-support/lua-bytes.js';
import { libsodium, prepareLibsodium } from './sodium-loader.js';

/** `base64url(header).base64url(payload).base64url(signature)` for a 64-byte Ed25519 secret key. */
export function signJwt(secretKey: Buffer, headerJson: Buffer, payloadJson: Buffer): string {
  const signingInput = `${headerJson.toString('base64url')}.${payloadJson.toString('base64url')}`;
  const signature = Buffer.from(libsodium().crypto_sign_detached(Buffer.from(signingInput, 'latin1'), secretKey));
  return `${signingInput}.${signature.toString('base64url')}`;
}

export const jwtLibrary: LuaLibrary = {
  name: 'jwt',
  prepare: prepareLibsodium,
  primitives: () => ({
    sign: ([sk, header, payload]) => signJwt(bytesOf(sk), bytesOf(header), bytesOf(payload)),
  }),
};
