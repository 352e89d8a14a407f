// The built JavaScript (dist/, what the daemon runs) carries no comments:
// V8 keeps the source text of every module it loads, and the comments were
// about 0.2 MB of an idle daemon (docs/limits.md, "Memory").  The `#!` line
// of main.js and the source-map links stay.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { MAIN } from './helpers/daemon.js';

const DIST = join(MAIN, '..');

/** The comments of `text` other than a `//# sourceMappingURL=` link. */
function comments(text: string): string[] {
  const scanner = ts.createScanner(ts.ScriptTarget.ES2022, false, ts.LanguageVariant.Standard, text);
  const found: string[] = [];
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    if (kind !== ts.SyntaxKind.SingleLineCommentTrivia && kind !== ts.SyntaxKind.MultiLineCommentTrivia) continue;
    const comment = scanner.getTokenText();
    if (!comment.startsWith('//# sourceMappingURL=')) found.push(comment);
  }
  return found;
}

describe('the built JavaScript', () => {
  it('finds the comments of a file with some (the check itself)', () => {
    assert.deepEqual(comments('#!/usr/bin/env node\n// one\nconst a = 1; /* two */\n//# sourceMappingURL=x.js.map\n'), ['// one', '/* two */']);
  });

  it('carries no comments, and main.js keeps its #! line', () => {
    const files = readdirSync(DIST, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') || f.endsWith('.cjs'));
    assert.ok(files.length > 50, `dist/ has ${files.length} files`);
    assert.ok(files.includes('rx.js') && files.includes('package-dir.cjs'), 'the bundled RxJS and the CommonJS leaf are checked too');
    for (const file of files) assert.deepEqual(comments(readFileSync(join(DIST, file), 'utf8')), [], file);
    assert.match(readFileSync(MAIN, 'utf8'), /^#!\/usr\/bin\/env -S /);
  });
});
