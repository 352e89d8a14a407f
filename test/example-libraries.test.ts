// examples/libraries.lua loads and works: its sockets bound in a temporary
// folder, its keys made here, mails run through its handler.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import sodium from 'libsodium-wrappers';
import { LuaEngine, type ListenRequest } from '../src/lua/engine.js';
import type { Decision, MailInput } from '../src/policy.js';
import { unixReceiver, type DatagramReceiver } from './helpers/datagram-receiver.js';
import { ROOT } from './helpers/daemon.js';

interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

function mail(sender: string): MailInput {
  return { sender, recipients: ['rcpt@example.com'], credentials: { pid: 4242, uid: 1000, gid: 1000 }, peerPidfd: () => undefined };
}

describe('examples/libraries.lua', () => {
  let dir: string;
  let control: DatagramReceiver;
  let auditLog: DatagramReceiver;
  let engine: LuaEngine;
  const listens: ListenRequest[] = [];
  const savedEnv = { ...process.env };
  let signing: KeyPair;
  let auditors: KeyPair;

  /** The next audit record, opened with the auditors' key. */
  async function nextAuditRecord(): Promise<Record<string, unknown>> {
    const sealed = Buffer.from((await auditLog.next()).toString(), 'hex');
    return JSON.parse(Buffer.from(sodium.crypto_box_seal_open(sealed, auditors.publicKey, auditors.privateKey)).toString()) as Record<string, unknown>;
  }

  async function decide(sender: string): Promise<Decision> {
    const session = engine.open(listens[0]!.handler, mail(sender));
    const decision = await firstValueFrom(session.decision$);
    session.close();
    return decision;
  }

  before(async () => {
    await sodium.ready;
    signing = sodium.crypto_sign_keypair();
    auditors = sodium.crypto_box_keypair();
    dir = mkdtempSync(join(tmpdir(), 'qrelay-example-'));
    control = unixReceiver(join(dir, 'control.sock'));
    auditLog = unixReceiver(join(dir, 'audit.sock'));
    Object.assign(process.env, {
      QRELAY_SOCKET: join(dir, 'qrelay.sock'),
      QRELAY_DOWNSTREAM: join(dir, 'downstream.sock'),
      QRELAY_AUDIT_LOG: auditLog.logServer,
      QRELAY_BENG_CONTROL: control.logServer,
      QRELAY_SETTINGS: '{"blocked_domains": ["Spam.Example"], "token_lifetime": 60}',
      QRELAY_JWT_KEY: Buffer.from(signing.privateKey).toString('hex'),
      QRELAY_AUDIT_KEY: Buffer.from(auditors.publicKey).toString('hex'),
    });
    engine = await LuaEngine.load(join(ROOT, 'examples', 'libraries.lua'), { listen: (request) => listens.push(request) });
  });

  after(async () => {
    process.env = savedEnv;
    await control.close();
    await auditLog.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens where QRELAY_SOCKET says and writes a sealed startup record', async () => {
    assert.deepEqual(listens.map((l) => l.target), [{ kind: 'path', path: join(dir, 'qrelay.sock') }]);
    const record = await nextAuditRecord();
    assert.equal(record.event, 'startup');
    assert.deepEqual(record.blocked, { 1: 'Spam.Example' });
  });

  it('relays other mail with a token the downstream service can verify', async () => {
    const decision = await decide('alice@good.example');
    assert.equal(decision.kind, 'action');
    if (decision.kind !== 'action') return;
    assert.deepEqual(decision.action, {
      kind: 'connect',
      servers: [{ family: 'unix', name: Buffer.from(join(dir, 'downstream.sock')), abstract: false }],
      order: 'sequential',
      connectTimeoutMs: undefined,
      timeoutMs: undefined,
    });
    const header = decision.mail.headers[0]!.toString('latin1');
    const token = /^X-Relay-Token: (\S+)\r\n$/.exec(header)![1]!;
    const [head, payload, signature] = token.split('.');
    assert.ok(sodium.crypto_sign_verify_detached(Buffer.from(signature!, 'base64url'), `${head}.${payload}`, signing.publicKey));
    assert.deepEqual(JSON.parse(Buffer.from(head!, 'base64url').toString()), { alg: 'EdDSA', kid: 'qrelay', typ: 'JWT' });
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { sub: string; rcpt: number; iat: number; exp: number };
    assert.equal(claims.sub, 'alice@good.example');
    assert.equal(claims.rcpt, 1);
    assert.equal(claims.exp - claims.iat, 60);
    const record = await nextAuditRecord();
    assert.deepEqual({ ...record, time: 0 }, { sender: 'alice@good.example', recipients: { 1: 'rcpt@example.com' }, uid: 1000, time: 0 });
  });

  it('rejects blocked domains and tells beng-proxy to reset the limiter', async () => {
    const decision = await decide('mallory@spam.example');
    assert.equal(decision.kind === 'action' && decision.action.kind, 'reject');
    const sender = Buffer.from('mallory@spam.example');
    const expected = Buffer.concat([Buffer.from('6304610100140016', 'hex'), sender]);
    assert.equal((await control.next()).toString('hex'), expected.toString('hex'));
    assert.equal((await nextAuditRecord()).sender, 'mallory@spam.example');
  });
});
