// The quick start: examples/config.lua (what `npm start` runs) accepts
// mail, stores it under run/mail/, and rejects @example.invalid.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, removeDir, startDaemon, tempDir } from './helpers/daemon.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

describe('the example configuration', () => {
  it('stores accepted mail as files under run/mail and rejects the demo domain', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'examples'));
    mkdirSync(join(root, 'run', 'mail'), { recursive: true });
    for (const f of ['config.lua', 'save-mail.sh']) copyFileSync(join(ROOT, 'examples', f), join(root, 'examples', f));
    const daemon = await startDaemon({
      config: readFileSync(join(ROOT, 'examples', 'config.lua'), 'utf8'),
      dir: join(root, 'examples'),
      readyPath: '../run/qrelay.sock',
    });
    const sock = join(root, 'run', 'qrelay.sock');
    try {
      const answer = await send(sock, qmqpRequest('Subject: hi\n\nHello\n', 'alice@example.com', ['bob@example.org', 'carol@example.org']));
      assert.match(answer, /^\d+:Kqueued as \S+\.eml\n,$/);
      const files = readdirSync(join(root, 'run', 'mail'));
      assert.equal(files.length, 1);
      assert.equal(
        readFileSync(join(root, 'run', 'mail', files[0]!), 'latin1'),
        'X-Envelope-From: <alice@example.com>\nX-Envelope-To: <bob@example.org>\nX-Envelope-To: <carol@example.org>\n' +
          `X-Qrelay-Sender-Uid: ${process.getuid!()}\r\nReceived: from PID=${process.pid} UID=${process.geteuid!()} with QMQP\r\nSubject: hi\n\nHello\n`,
      );
      assert.equal(await send(sock, qmqpRequest('m', 'alice@example.com', ['x@example.invalid'])), '9:Drejected,');
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(root);
    }
  });
});
