// The argument-check helpers shared by the libraries (argcheck.lua); pure
// Lua, so no JavaScript primitives.
import type { LuaLibrary } from '../libraries.js';

export const argcheckLibrary: LuaLibrary = {
  name: 'argcheck',
  primitives: () => ({}),
};
