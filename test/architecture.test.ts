// The import rules of DEVELOPERS.md ("Imports run one way"), checked on the
// real import graph of src/: every `import`, `import type`, `export … from`
// and `import()` with a relative path counts.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** File (repository-relative, `/`-separated) → the files it imports. */
type ImportGraph = ReadonlyMap<string, readonly string[]>;

interface Edge {
  readonly from: string;
  readonly to: string;
}

function sourceFiles(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') || f.endsWith('.cts'))
    .map((f) => posix.join(folder, f.split('\\').join('/')))
    .sort();
}

/** The graph of src/, and the relative imports that name no file (which would hide edges). */
function readImportGraph(): { graph: ImportGraph; unresolved: string[] } {
  const graph = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const file of sourceFiles('src')) {
    const info = ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true);
    const targets = new Set<string>();
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), fileName)).replace(/\.js$/, '.ts').replace(/\.cjs$/, '.cts');
      if (!existsSync(join(root, target))) unresolved.push(`${file} → ${fileName}`);
      targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return { graph, unresolved };
}

function edges(graph: ImportGraph): Edge[] {
  return [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })));
}

/** One shortest cycle through each strongly connected component (Tarjan), as `a → b → a`. */
function findCycles(graph: ImportGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return components.map((component) => shortestCycle(graph, component));
}

function shortestCycle(graph: ImportGraph, component: readonly string[]): string[] {
  const inside = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    for (const next of graph.get(node) ?? []) {
      if (!inside.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [...component, start];
}

const under = (folder: string) => (file: string) => file.startsWith(folder + '/');
const oneOf = (...files: string[]) => (file: string) => files.includes(file);
const any =
  (...tests: ((file: string) => boolean)[]) =>
  (file: string) =>
    tests.some((test) => test(file));

interface Rule {
  readonly name: string;
  readonly from: (file: string) => boolean;
  /** Whether `from` may import `to`. */
  readonly allows: (to: string) => boolean;
}

/**
 * Where the package's files are (src/package-dir.cts): a leaf that imports
 * nothing of src/, so that every layer may use it.
 */
const PACKAGE_DIR = 'src/package-dir.cts';

/** What the Lua wing may import from outside src/lua: the contract, the errors and the leaves below the pipeline. */
const LUA_MAY_IMPORT = any(
  under('src/lua'),
  under('src/protocol'),
  under('src/native'),
  oneOf('src/policy.ts', 'src/errors.ts', 'src/timeouts.ts', 'src/log.ts', 'src/metrics.ts', 'src/rx.ts', PACKAGE_DIR),
);

/** The one door into the Lua wing for everything outside it. */
const LUA_ENTRY = 'src/lua/engine.ts';

const RULES: readonly Rule[] = [
  {
    name: 'src/operators knows no Lua internals (the policy is src/policy.ts)',
    from: under('src/operators'),
    allows: (to) => !under('src/lua')(to),
  },
  {
    name: 'src/lua touches no client connection (only src/lua, protocol, native, policy.ts, errors.ts, timeouts.ts, log.ts, metrics.ts, rx.ts, package-dir.cts)',
    from: under('src/lua'),
    allows: LUA_MAY_IMPORT,
  },
  {
    name: 'src/streams knows neither the engine, the operators nor the actions',
    from: under('src/streams'),
    allows: (to) => !under('src/lua')(to) && !under('src/operators')(to) && !under('src/actions')(to),
  },
  {
    name: 'src/actions knows neither the engine nor the operators',
    from: under('src/actions'),
    allows: (to) => !under('src/lua')(to) && !under('src/operators')(to),
  },
  {
    name: 'src/protocol and src/native import only each other (and package-dir.cts)',
    from: any(under('src/protocol'), under('src/native')),
    allows: any(under('src/protocol'), under('src/native'), oneOf(PACKAGE_DIR)),
  },
  {
    name: 'src/package-dir.cts imports nothing of src/',
    from: oneOf(PACKAGE_DIR),
    allows: () => false,
  },
  {
    name: `outside src/lua, only ${LUA_ENTRY} is imported from it`,
    from: (file) => !under('src/lua')(file),
    allows: (to) => !under('src/lua')(to) || to === LUA_ENTRY,
  },
];

interface KnownException {
  readonly from: RegExp;
  readonly to: RegExp;
  /** Why it is still there and who removes it. */
  readonly reason: string;
}

// Arrows that break a rule today and belong to another engineer's work.
// Each must still exist (the test fails on a stale entry): whoever removes
// the arrow removes its entry here.
const KNOWN_EXCEPTIONS: readonly KnownException[] = [];

// Edges left out of the cycle check (none since the Lua wing's libraries
// see the engine through library.ts's LibraryHost).  Same staleness check
// as above.
const KNOWN_CYCLE_EDGES: readonly KnownException[] = [];

const matches = (exception: KnownException, edge: Edge): boolean => exception.from.test(edge.from) && exception.to.test(edge.to);

function ruleViolations(graph: ImportGraph, rules: readonly Rule[]): { rule: string; edge: Edge }[] {
  return edges(graph).flatMap((edge) =>
    rules.filter((rule) => rule.from(edge.from) && !rule.allows(edge.to)).map((rule) => ({ rule: rule.name, edge })),
  );
}

function withoutEdges(graph: ImportGraph, left: readonly KnownException[]): ImportGraph {
  return new Map([...graph].map(([from, targets]) => [from, targets.filter((to) => !left.some((e) => matches(e, { from, to })))]));
}

const show = (edge: Edge): string => `${edge.from} → ${edge.to}`;

describe('architecture: the import graph of src/', () => {
  const { graph, unresolved } = readImportGraph();

  it('reads every file of src/ and resolves every relative import', () => {
    assert.ok(graph.size >= 50, `only ${graph.size} files read`);
    assert.ok(graph.get('src/operators/serve-client.ts')?.includes('src/policy.ts'), 'a known import was not seen');
    assert.ok(graph.get('src/native/linux.ts')?.includes(PACKAGE_DIR), 'an import of the CommonJS leaf was not seen');
    assert.deepEqual(unresolved, []);
  });

  it('has no import cycle', () => {
    const cycles = findCycles(withoutEdges(graph, KNOWN_CYCLE_EDGES));
    assert.deepEqual(
      cycles.map((cycle) => cycle.join(' → ')),
      [],
      'imports run one way (DEVELOPERS.md): move what both sides need to a module below both',
    );
  });

  it('keeps the layer rules of DEVELOPERS.md', () => {
    const broken = ruleViolations(graph, RULES)
      .filter(({ edge }) => !KNOWN_EXCEPTIONS.some((e) => matches(e, edge)))
      .map(({ rule, edge }) => `${show(edge)}: ${rule}`);
    assert.deepEqual(broken, []);
  });

  it('imports RxJS only through src/rx.ts (the names it uses, not the whole package)', () => {
    const through = sourceFiles('src')
      .filter((file) => file !== 'src/rx.ts')
      .filter((file) => ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true).importedFiles.some(({ fileName }) => fileName === 'rxjs' || fileName.startsWith('rxjs/')));
    assert.deepEqual(through, []);
  });

  it('lists only known exceptions that still occur', () => {
    const all = edges(graph);
    const stale = [...KNOWN_EXCEPTIONS, ...KNOWN_CYCLE_EDGES]
      .filter((e) => !all.some((edge) => matches(e, edge)))
      .map((e) => `${e.from.source} → ${e.to.source} (${e.reason}): no longer imported, remove the entry`);
    assert.deepEqual(stale, []);
    const unneeded = KNOWN_EXCEPTIONS.filter((e) => !ruleViolations(graph, RULES).some(({ edge }) => matches(e, edge))).map(
      (e) => `${e.from.source} → ${e.to.source}: breaks no rule any more, remove the entry`,
    );
    assert.deepEqual(unneeded, []);
  });
});

describe('architecture: the checks themselves', () => {
  const graphOf = (entries: Record<string, string[]>): ImportGraph => new Map(Object.entries(entries));

  it('finds a cycle, a self-import, and nothing in a one-way graph', () => {
    assert.deepEqual(findCycles(graphOf({ a: ['b'], b: ['c'], c: ['a', 'd'], d: [] })), [['a', 'b', 'c', 'a']]);
    assert.deepEqual(findCycles(graphOf({ a: ['a'] })), [['a', 'a']]);
    assert.deepEqual(findCycles(graphOf({ a: ['b', 'c'], b: ['c'], c: [] })), []);
  });

  it('names each arrow that breaks a rule', () => {
    const graph = graphOf({
      'src/operators/x.ts': ['src/lua/errors.ts', 'src/policy.ts'],
      'src/streams/y.ts': ['src/lua/engine.ts', 'src/operators/x.ts', 'src/native/linux.ts'],
      'src/actions/z.ts': ['src/operators/idle.ts', 'src/streams/y.ts'],
      'src/lua/w.ts': ['src/streams/socket-chunks.ts', 'src/policy.ts', 'src/lua/v.ts'],
      'src/daemon.ts': ['src/lua/engine.ts', 'src/lua/libs/pg.ts'],
    });
    assert.deepEqual(
      [...new Set(ruleViolations(graph, RULES).map(({ edge }) => show(edge)))],
      [
        'src/operators/x.ts → src/lua/errors.ts',
        'src/streams/y.ts → src/lua/engine.ts',
        'src/streams/y.ts → src/operators/x.ts',
        'src/actions/z.ts → src/operators/idle.ts',
        'src/lua/w.ts → src/streams/socket-chunks.ts',
        'src/daemon.ts → src/lua/libs/pg.ts',
      ],
    );
  });
});
