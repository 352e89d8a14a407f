// The documentation stands on its own: every relative link in the user
// documents leads to an existing file and heading, no file of the
// repository points outside it, and every name qrelay adds to Lua is
// documented in docs/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';
import { LuaFactory } from 'wasmoon';
import { runLua } from './helpers/run-lua.js';

const ROOT = join(import.meta.dirname, '..');

function userDocuments(): string[] {
  const top = ['README.md', 'CHANGELOG.md', 'SECURITY.md'].filter((f) => existsSync(join(ROOT, f)));
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return [...top, ...docs];
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  for (const line of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
    const heading = /^#+\s+(.*)$/.exec(line);
    if (heading) anchors.add(anchorOf(heading[1]!));
  }
  return anchors;
}

/** `[text](target)` links outside code blocks. */
function linksOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t));
}

function documentation(): string {
  return readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => readFileSync(join(ROOT, 'docs', f), 'utf8'))
    .join('\n');
}

/** Global names (and `table.field` names) of a Lua state, one per line. */
const LIST_NAMES = `
local names = {}
for k, v in pairs(_G) do
  if type(k) == 'string' then
    names[#names + 1] = k
    if type(v) == 'table' and k ~= '_G' then
      for f in pairs(v) do
        if type(f) == 'string' then names[#names + 1] = k .. '.' .. f end
      end
    end
  end
end
table.sort(names)
return table.concat(names, ' ')
`;

async function plainLuaNames(): Promise<Set<string>> {
  const engine = await new LuaFactory().createEngine();
  try {
    return new Set(String(engine.doStringSync(LIST_NAMES)).split(' '));
  } finally {
    engine.global.close();
  }
}

describe('documentation', () => {
  it('every relative link in README, CHANGELOG, SECURITY and docs/ leads to an existing file and heading', () => {
    const broken: string[] = [];
    for (const file of userDocuments()) {
      for (const link of linksOf(file)) {
        const [path = '', fragment] = link.split('#');
        const target = path === '' ? file : normalize(join(dirname(file), path));
        if (!existsSync(join(ROOT, target))) broken.push(`${file}: ${link} (no such file)`);
        else if (fragment !== undefined && target.endsWith('.md') && !anchorsOf(target).has(fragment)) broken.push(`${file}: ${link} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('no file of the repository points at files kept outside it', () => {
    const outside = ['..', 'shared', ''].join('/');
    const absolute = ['', 'work', 'shared'].join('/');
    const files = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => f !== '' && existsSync(join(ROOT, f)));
    const pointing = files.filter((f) => {
      const text = readFileSync(join(ROOT, f), 'latin1');
      return text.includes(outside) || text.includes(absolute);
    });
    assert.deepEqual(pointing.map((f) => relative('.', f)), []);
  });

  it('every global and library function qrelay adds to Lua is named in docs/', async () => {
    const plain = await plainLuaNames();
    const [line = ''] = await runLua(`emit((function() ${LIST_NAMES} end)())`);
    const added = line.split(' ').filter((name) => !plain.has(name));
    // the run-lua helper's own globals
    const helpers = new Set(['emit', 'hex', 'show', 'pcall_text', '__out', '__OUTPUT']);
    const docs = documentation();
    // `pg.new` is written `pg:new` (it is called with a colon)
    const missing = added.filter((name) => !helpers.has(name) && !docs.includes(name) && !docs.includes(name.replace('.', ':')));
    assert.ok(added.includes('qmqp_listen') && added.includes('sodium.crypto_box_seal'), `names found: ${added.join(' ')}`);
    assert.deepEqual(missing, []);
  });

  it('the mail object, its actions and the library objects are described in docs/', () => {
    const docs = documentation();
    const names = [
      'm.sender', 'm.recipients', 'm.pid', 'm.uid', 'm.gid', 'm.cgroup', 'm.account',
      'm:insert_header', 'm:discard', 'm:reject', 'm:connect', 'm:exec', 'm:exec_raw',
      'path', 'parent', 'xattr', 'reload',
      'sock:send', 'sock:close', 'client:build', 'client:send',
      'fade_children', 'flush_filter_cache', 'discard_session', 'flush_http_cache', 'terminate_children',
      'disconnect_database', 'reset_limiter', 'reject_client', 'tarpit_client', 'cancel_job',
      'db:execute', 'db:listen', 'result:fetch',
    ];
    assert.deepEqual(names.filter((name) => !docs.includes(name)), []);
  });
});
