#!/usr/bin/env node
// A minimal QMQP client for trying qrelay out:
//   node scripts/send-mail.mjs [SOCKET] [SENDER] [RECIPIENT...] < message
// Prints the server's answer (K = accepted, Z = try later, D = refused).
import { connect } from 'node:net';

const [socketPath = 'run/qrelay.sock', sender = `${process.env.USER ?? 'user'}@localhost`, ...recipients] = process.argv.slice(2);
if (recipients.length === 0) recipients.push('postmaster@localhost');
const chunks = [];
if (!process.stdin.isTTY) for await (const chunk of process.stdin) chunks.push(chunk);
const message = chunks.length > 0 ? Buffer.concat(chunks) : Buffer.from('Subject: hello from qrelay\n\nIt works.\n');
const ns = (b) => Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
const body = Buffer.concat([ns(message), ns(Buffer.from(sender)), ...recipients.map((r) => ns(Buffer.from(r)))]);
const socket = connect(socketPath, () => socket.write(ns(body)));
const answer = [];
socket.on('data', (d) => answer.push(d));
socket.on('end', () => {
  const text = Buffer.concat(answer).toString('latin1');
  const payload = text.slice(text.indexOf(':') + 1, -1);
  console.log(payload === '' ? '(no answer)' : payload);
  process.exitCode = payload.startsWith('K') ? 0 : 1;
});
socket.on('error', (e) => {
  console.error(`${socketPath}: ${e.message}`);
  process.exitCode = 2;
});
