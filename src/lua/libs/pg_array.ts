// The PostgreSQL array helpers (pg_array.lua) are pure Lua: no JavaScript
// primitives.
import type { LuaLibrary } from '../libraries.js';

export const pgArrayLibrary: LuaLibrary = {
  name: 'pg_array',
  primitives: () => ({}),
};
