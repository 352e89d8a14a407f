// Which of the optional libraries a config can reach, decided from its text
// before it runs (the libraries are installed before any script code, and
// some can only be set up asynchronously).  A config that names none of a
// library's globals, loads no other code (load, loadfile, loadstring,
// dofile, require, module, package) and reaches no global by a computed
// name (_G, _ENV, getfenv, debug) cannot use that library, at startup or
// later: every handler it installs is in that text.  A mention in a comment
// or a string counts too, and so does a precompiled chunk or a file that
// cannot be read here: such configs get every library.
/** Names that lead to any global, whichever its name. */
const REACHES_ANY = ['_G', '_ENV', 'getfenv', 'debug', 'load', 'loadfile', 'loadstring', 'dofile', 'require', 'module', 'package'];

/** The Lua signature that starts a precompiled chunk. */
const PRECOMPILED = 0x1b;

/** Whether `config` (its bytes; undefined: unreadable) may use a global of `globals`. */
export function mayReach(config: Buffer | undefined, globals: readonly string[]): boolean {
  if (config === undefined || config[0] === PRECOMPILED) return true;
  return new RegExp(`\\b(?:${[...globals, ...REACHES_ANY].join('|')})\\b`).test(config.toString('latin1'));
}
