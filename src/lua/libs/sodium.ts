// JavaScript side of the `sodium` library: libsodium (WebAssembly build)
// on Lua byte strings.  Argument checks live in sodium.lua; these
// primitives only see strings of the right lengths.  libsodium is loaded
// only for configs that may use it (sodium-loader.ts).
import type { LuaLibrary } from '../library.js';
import type { LuaPushable } from '../lua-values.js';
import { bytesOf } from '../library-support/lua-bytes.js';
import { libsodium, libsodiumLoaded, prepareLibsodium } from './sodium-loader.js';

/** node:crypto's, loaded with libsodium (about 1 MB that a config without `sodium` does not need). */
let randomBytes: ((size: number) => Buffer) | undefined;

function pushable(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

const HEX = /^(?:[0-9A-Fa-f]{2})*$/;

export const sodiumLibrary: LuaLibrary = {
  name: 'sodium',
  prepare: async (config) => {
    await prepareLibsodium(config);
    if (libsodiumLoaded()) randomBytes ??= (await import('node:crypto')).randomBytes;
  },
  primitives: () => ({
    bin2hex: ([s]) => bytesOf(s).toString('hex'),
    // nil for odd lengths and anything but hex digits
    hex2bin: ([s]) => {
      const text = String(s);
      return HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
    },
    // the kernel's CSPRNG, as libsodium's; its WebAssembly build fetches
    // entropy a few bytes per call (seconds for a megabyte)
    randombytes: ([n]) => {
      if (randomBytes === undefined) throw new Error('libsodium is not loaded');
      return randomBytes(Number(n));
    },
    crypto_box_keypair: (): LuaPushable[] => {
      const { publicKey, privateKey } = libsodium().crypto_box_keypair();
      return [pushable(publicKey), pushable(privateKey)];
    },
    // nil when libsodium refuses the key (e.g. a low-order point)
    crypto_box_seal: ([m, pk]) => {
      try {
        return pushable(libsodium().crypto_box_seal(bytesOf(m), bytesOf(pk)));
      } catch {
        return undefined;
      }
    },
    // nil when the ciphertext does not open with this key pair
    crypto_box_seal_open: ([c, pk, sk]) => {
      try {
        return pushable(libsodium().crypto_box_seal_open(bytesOf(c), bytesOf(pk), bytesOf(sk)));
      } catch {
        return undefined;
      }
    },
    crypto_scalarmult_base: ([sk]) => pushable(libsodium().crypto_scalarmult_base(bytesOf(sk))),
    crypto_sign_keypair: (): LuaPushable[] => {
      const { publicKey, privateKey } = libsodium().crypto_sign_keypair();
      return [pushable(publicKey), pushable(privateKey)];
    },
    crypto_sign_detached: ([m, sk]) => pushable(libsodium().crypto_sign_detached(bytesOf(m), bytesOf(sk))),
    crypto_sign_verify_detached: ([sig, m, pk]) => {
      try {
        return libsodium().crypto_sign_verify_detached(bytesOf(sig), bytesOf(m), bytesOf(pk));
      } catch {
        return false;
      }
    },
  }),
};
