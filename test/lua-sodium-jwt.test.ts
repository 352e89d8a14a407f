// The `sodium` and `jwt` libraries (docs/libraries.md) run by the real
// engine, checked against libsodium used directly.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import sodium from 'libsodium-wrappers';
import { luaString, runLua } from './helpers/run-lua.js';

// RFC 8032 test 1: seed ‖ public key
const RFC8032_SK =
  '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC8032_PK = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const HELLO_SIGNATURE =
  '2c5482392a197ec09fa33777958d3a0be4f4960af85e9796a4d822c95ecf704a34fed32adb699a88c0ea876b9fbb17d1dbd336f754fd9207bfc112c89aa54f02';
const T_B_04 =
  'eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJleHAiOjIwMDAwMDAwMDAsIm4iOjMsInN1YiI6Im1haWwifQ.P8kBOAIYyiq9VS6g6vh_R4cYIuksuTD8eNgRBO27NSEiiHlO6YEr41mfP8TK_wk98f7Lp7G4WrqqchxWwTLAAg';

/** Every byte value, with the ones most likely to break a text bridge first. */
const ALL_BYTES = Buffer.concat([Buffer.from([0x00, 0x80, 0xff, 0xc3, 0x28]), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);

before(async () => {
  await sodium.ready;
});

describe('sodium', () => {
  it('produces the hex examples and the RFC 8032 test-1 signature', async () => {
    const lines = await runLua(`
      emit(sodium.bin2hex('A\\0\\255'))
      emit(hex(sodium.hex2bin('DEADbeef')))
      emit(select('#', sodium.hex2bin('abc')), (sodium.hex2bin('abc')))
      emit(select('#', sodium.hex2bin('zz')), (sodium.hex2bin('zz')))
      emit(sodium.hex2bin('') == '')
      emit(sodium.bin2hex(sodium.crypto_sign_detached('hello world', sodium.hex2bin('${RFC8032_SK}'))))
      emit(sodium.bin2hex(${luaString(ALL_BYTES)}))
      emit(sodium.hex2bin('${ALL_BYTES.toString('hex').toUpperCase()}') == ${luaString(ALL_BYTES)})
      emit(sodium.bin2hex(12), sodium.bin2hex(1.5))
    `);
    assert.deepEqual(lines, ['4100ff', 'deadbeef', '0\tnil', '0\tnil', 'true', HELLO_SIGNATURE, ALL_BYTES.toString('hex'), 'true', '3132\t312e35']);
  });

  it('seals for a key pair made outside the engine, and opens what was sealed outside', async () => {
    const { publicKey, privateKey } = sodium.crypto_box_keypair();
    const sealedOutside = sodium.crypto_box_seal(ALL_BYTES, publicKey);
    const [sealed, opened, wrongKey] = await runLua(`
      local pk, sk = sodium.hex2bin('${Buffer.from(publicKey).toString('hex')}'), sodium.hex2bin('${Buffer.from(privateKey).toString('hex')}')
      emit(sodium.bin2hex(sodium.crypto_box_seal(${luaString(ALL_BYTES)}, pk)))
      emit(sodium.bin2hex(sodium.crypto_box_seal_open(sodium.hex2bin('${Buffer.from(sealedOutside).toString('hex')}'), pk, sk)))
      local other_pk, other_sk = sodium.crypto_box_keypair()
      emit(select('#', sodium.crypto_box_seal_open(sodium.crypto_box_seal('x', pk), other_pk, other_sk)))
    `);
    assert.equal(sealed!.length, (ALL_BYTES.length + 48) * 2);
    assert.deepEqual(Buffer.from(sodium.crypto_box_seal_open(Buffer.from(sealed!, 'hex'), publicKey, privateKey)), ALL_BYTES);
    assert.equal(opened, ALL_BYTES.toString('hex'));
    assert.equal(wrongKey, '0');
  });

  it('signs so that libsodium verifies, and verifies what libsodium signed', async () => {
    const { publicKey, privateKey } = sodium.crypto_sign_keypair();
    const message = ALL_BYTES;
    const signedOutside = Buffer.from(sodium.crypto_sign_detached(message, privateKey)).toString('hex');
    const [signature, good, tampered, otherMessage, shortSig] = await runLua(`
      local pk, sk = sodium.hex2bin('${Buffer.from(publicKey).toString('hex')}'), sodium.hex2bin('${Buffer.from(privateKey).toString('hex')}')
      local m = ${luaString(message)}
      emit(sodium.bin2hex(sodium.crypto_sign_detached(m, sk)))
      local sig = sodium.hex2bin('${signedOutside}')
      emit(sodium.crypto_sign_verify_detached(sig, m, pk))
      emit(sodium.crypto_sign_verify_detached(string.char(sig:byte(1) ~ 1) .. sig:sub(2), m, pk))
      emit(sodium.crypto_sign_verify_detached(sig, m .. 'x', pk))
      emit(select('#', sodium.crypto_sign_verify_detached(sig:sub(2), m, pk)))
    `);
    assert.ok(sodium.crypto_sign_verify_detached(Buffer.from(signature!, 'hex'), message, publicKey));
    assert.deepEqual([good, tampered, otherMessage, shortSig], ['true', 'false', 'false', '0']);
  });

  it('makes key pairs and random bytes of the documented sizes', async () => {
    const lines = await runLua(`
      local pk, sk = sodium.crypto_box_keypair()
      emit(#pk, #sk, sodium.crypto_scalarmult_base(sk) == pk)
      local spk, ssk = sodium.crypto_sign_keypair()
      emit(#spk, #ssk, ssk:sub(33) == spk)
      emit(sodium.crypto_sign_verify_detached(sodium.crypto_sign_detached('m', ssk), 'm', spk))
      emit(#sodium.randombytes(1), #sodium.randombytes(1048576), #sodium.randombytes('16'), #sodium.randombytes(2.9))
      emit(sodium.randombytes(32) ~= sodium.randombytes(32))
      emit(sodium.bin2hex(sodium.crypto_scalarmult_base(sodium.hex2bin('${'77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'}'))))
    `);
    assert.deepEqual(lines, [
      '32\t32\ttrue',
      '32\t64\ttrue',
      'true',
      '1\t1048576\t16\t2',
      'true',
      // RFC 7748 §6.1: Alice's public key
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    ]);
  });

  it('raises the documented argument errors', async () => {
    const lines = await runLua(`
      local k32, k64 = string.rep('k', 32), string.rep('k', 64)
      emit(pcall_text(sodium.bin2hex, 'a', 'b'))
      emit(pcall_text(sodium.bin2hex))
      emit(pcall_text(sodium.hex2bin, {}))
      emit(pcall_text(sodium.randombytes, 0))
      emit(pcall_text(sodium.randombytes, 1048577))
      emit(pcall_text(sodium.randombytes, 'x'))
      emit(pcall_text(sodium.crypto_box_keypair, 1))
      emit(pcall_text(sodium.crypto_sign_keypair, nil))
      emit(pcall_text(sodium.crypto_box_seal, 'm', 'short'))
      emit(pcall_text(sodium.crypto_box_seal, 'm', k32, 3))
      emit(pcall_text(sodium.crypto_box_seal_open, string.rep('c', 47), k32, k32))
      emit(pcall_text(sodium.crypto_box_seal_open, string.rep('c', 48), k64, k32))
      emit(pcall_text(sodium.crypto_box_seal_open, string.rep('c', 48), k32, k64))
      emit(pcall_text(sodium.crypto_scalarmult_base, k64))
      emit(pcall_text(sodium.crypto_sign_detached, 'm', k32))
      emit(pcall_text(sodium.crypto_sign_detached, nil, k64))
      emit(pcall_text(sodium.crypto_sign_verify_detached, string.rep('s', 64), 'm', k64))
      emit(pcall_text(function() sodium.crypto_scalarmult_base('x') end))
    `);
    assert.deepEqual(lines.slice(0, -1), [
      'Too many parameters',
      "bad argument #1 to 'bin2hex' (string expected, got no value)",
      "bad argument #1 to 'hex2bin' (string expected, got table)",
      "bad argument #1 to 'randombytes' (Size is too small)",
      "bad argument #1 to 'randombytes' (Size is too large)",
      "bad argument #1 to 'randombytes' (number expected, got string)",
      'Too many parameters',
      'Too many parameters',
      "bad argument #2 to 'crypto_box_seal' (Malformed public key)",
      'Too many parameters',
      "bad argument #1 to 'crypto_box_seal_open' (Malformed ciphertext)",
      "bad argument #2 to 'crypto_box_seal_open' (Malformed public key)",
      "bad argument #3 to 'crypto_box_seal_open' (Malformed secret key)",
      "bad argument #1 to 'crypto_scalarmult_base' (Malformed secret key)",
      "bad argument #2 to 'crypto_sign_detached' (Malformed secret key)",
      "bad argument #1 to 'crypto_sign_detached' (string expected, got nil)",
      "bad argument #3 to 'crypto_sign_verify_detached' (Malformed public key)",
    ]);
    assert.match(lines.at(-1)!, /config\.lua:\d+: bad argument #1 to 'crypto_scalarmult_base' \(Malformed secret key\)$/);
  });
});

describe('jwt.sign', () => {
  it('produces the known token for the RFC 8032 test-1 key', async () => {
    const [token] = await runLua(`emit(jwt.sign(sodium.hex2bin('${RFC8032_SK}'), {kid='k1', alg='none'}, {sub='mail', exp=2000000000, n=3.9}))`);
    assert.equal(token, T_B_04);
  });

  it('signs header and payload so that libsodium verifies the token', async () => {
    const { publicKey, privateKey } = sodium.crypto_sign_keypair();
    const [token] = await runLua(`
      emit(jwt.sign(sodium.hex2bin('${Buffer.from(privateKey).toString('hex')}'), {typ='x', 'first'}, {aud={'a', 'b'}, name='J\\195\\188rgen', ok=true}))
    `);
    const [header, payload, signature] = token!.split('.');
    assert.equal(Buffer.from(header!, 'base64url').toString(), '{"1":"first","alg":"EdDSA","typ":"JWT"}');
    assert.equal(Buffer.from(payload!, 'base64url').toString(), '{"aud":{"1":"a","2":"b"},"name":"Jürgen","ok":true}');
    assert.doesNotMatch(token!, /[=+/]/);
    assert.ok(sodium.crypto_sign_verify_detached(Buffer.from(signature!, 'base64url'), `${header}.${payload}`, publicKey));
  });

  it('leaves the caller’s header table alone', async () => {
    const [alg] = await runLua(`
      local header = {alg = 'none'}
      jwt.sign(sodium.hex2bin('${RFC8032_SK}'), header, {})
      emit(header.alg, header.typ)
    `);
    assert.equal(alg, 'none\tnil');
  });

  it('raises the documented argument errors', async () => {
    const lines = await runLua(`
      local sk = sodium.hex2bin('${RFC8032_SK}')
      emit(pcall_text(jwt.sign, sk, {}))
      emit(pcall_text(jwt.sign, sk, {}, {}, {}))
      emit(pcall_text(jwt.sign, sk:sub(2), {}, {}))
      emit(pcall_text(jwt.sign, sk, 'h', {}))
      emit(pcall_text(jwt.sign, sk, {}, nil))
      emit(pcall_text(jwt.sign, sk, {}, {bad = '\\255'}))
    `);
    assert.deepEqual(lines, [
      'Not enough parameters',
      'Too many parameters',
      "bad argument #1 to 'sign' (Malformed secret key)",
      "bad argument #2 to 'sign' (table expected, got string)",
      "bad argument #3 to 'sign' (table expected, got nil)",
      'C++ exception',
    ]);
  });
});
