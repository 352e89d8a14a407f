// Error texts as libpq formats them (PQresultErrorMessage / PQerrorMessage
// at the default verbosity), since scripts for the original see these:
// `ERROR:  relation "x" does not exist\nLINE 1: …\n        ^\n`.
import type { DatabaseError } from 'pg';
import { isDatabaseError } from './driver.js';
import { strerror } from '../../../native/linux.js';
import type { Endpoint } from './client-config.js';
import { ConninfoError } from './conninfo.js';

/** libpq's screen width limit and margin for the error cursor line. */
const DISPLAY_SIZE = 60;
const MIN_RIGHT_CUT = 10;

/** Screen columns of a character (ucs_wcwidth: East Asian wide forms take two). */
function displayWidth(c: string): number {
  const u = c.codePointAt(0)!;
  const wide =
    (u >= 0x1100 && u <= 0x115f) ||
    (u >= 0x2e80 && u <= 0xa4cf && u !== 0x303f) ||
    (u >= 0xac00 && u <= 0xd7a3) ||
    (u >= 0xf900 && u <= 0xfaff) ||
    (u >= 0xfe30 && u <= 0xfe6f) ||
    (u >= 0xff00 && u <= 0xff5f) ||
    (u >= 0xffe0 && u <= 0xffe6) ||
    (u >= 0x20000 && u <= 0x2fffd) ||
    (u >= 0x30000 && u <= 0x3fffd);
  return wide ? 2 : 1;
}

/**
 * The `LINE n: …` line and the `^` cursor under character `position`
 * (1-based) of `query` — a port of libpq's reportErrorPosition.
 */
export function errorPositionText(query: string, position: number): string {
  const loc = position - 1;
  if (loc < 0) return '';
  const chars = Array.from(query, (c) => (c === '\t' ? ' ' : c));
  // screen column where each character starts, filled up to the end of the line holding loc
  const column: number[] = [];
  let width = 0;
  let line = 1;
  let begin = 0;
  let end = -1;
  let index = 0;
  for (; index < chars.length; index++) {
    const c = chars[index]!;
    column[index] = width;
    if (c === '\r' || c === '\n') {
      if (index < loc) {
        // \r\n counts as one line end
        if (c === '\r' || index === 0 || chars[index - 1] !== '\r') line++;
        begin = index + 1;
      } else {
        end = index;
        break;
      }
    }
    width += displayWidth(c);
  }
  if (end < 0) {
    end = index;
    column[end] = width;
  }
  if (loc > index) return '';
  const at = (i: number): number => column[i]!;
  let cutBegin = false;
  let cutEnd = false;
  if (at(end) - at(begin) > DISPLAY_SIZE) {
    if (at(begin) + DISPLAY_SIZE >= at(loc) + MIN_RIGHT_CUT) {
      while (at(end) - at(begin) > DISPLAY_SIZE) end--;
      cutEnd = true;
    } else {
      while (at(loc) + MIN_RIGHT_CUT < at(end)) {
        end--;
        cutEnd = true;
      }
      while (at(end) - at(begin) > DISPLAY_SIZE) {
        begin++;
        cutBegin = true;
      }
    }
  }
  const prefix = `LINE ${line}: ${cutBegin ? '...' : ''}`;
  const text = chars.slice(begin, end).join('');
  return `${prefix}${text}${cutEnd ? '...' : ''}\n${' '.repeat(prefix.length + at(loc) - at(begin))}^\n`;
}

/** An error the server reported for `query` (pqBuildErrorMessage3, default verbosity). */
export function serverErrorText(error: DatabaseError, query: string | undefined): string {
  let text = error.severity === undefined ? '' : `${error.severity}:  `;
  text += error.message;
  let cursorQuery: string | undefined;
  let cursorPosition = 0;
  if (error.position !== undefined) {
    if (query !== undefined) {
      cursorQuery = query;
      cursorPosition = Number.parseInt(error.position, 10);
    } else {
      text += ` at character ${error.position}`;
    }
  } else if (error.internalPosition !== undefined) {
    if (error.internalQuery !== undefined) {
      cursorQuery = error.internalQuery;
      cursorPosition = Number.parseInt(error.internalPosition, 10);
    } else {
      text += ` at character ${error.internalPosition}`;
    }
  }
  text += '\n';
  if (cursorQuery !== undefined && cursorPosition > 0) text += errorPositionText(cursorQuery, cursorPosition);
  if (error.detail !== undefined) text += `DETAIL:  ${error.detail}\n`;
  if (error.hint !== undefined) text += `HINT:  ${error.hint}\n`;
  if (error.internalQuery !== undefined) text += `QUERY:  ${error.internalQuery}\n`;
  if (error.where !== undefined) text += `CONTEXT:  ${error.where}\n`;
  return text;
}

function endpointText(endpoint: Endpoint): string {
  if (endpoint.kind === 'socket') return `connection to server on socket "${endpoint.path}" failed: `;
  const address = endpoint.address !== undefined && endpoint.address !== endpoint.host ? ` (${endpoint.address})` : '';
  return `connection to server at "${endpoint.host}"${address}, port ${endpoint.port} failed: `;
}

/** Why a connection could not be established, as libpq words it. */
export function connectFailureText(error: unknown, endpoint: Endpoint | undefined): string {
  if (error instanceof ConninfoError || endpoint === undefined) return error instanceof Error ? error.message : String(error);
  const prefix = endpointText(endpoint);
  if (isDatabaseError(error)) return prefix + serverErrorText(error, undefined);
  const system = error as NodeJS.ErrnoException;
  if (system.code === 'ENOTFOUND' || system.code === 'EAI_AGAIN') {
    return `could not translate host name "${endpoint.kind === 'tcp' ? endpoint.host : ''}" to address: ${system.code === 'ENOTFOUND' ? 'Name or service not known' : 'Temporary failure in name resolution'}\n`;
  }
  if (typeof system.errno === 'number' && system.syscall === 'write') return `${prefix}could not send startup packet: ${strerror(-system.errno)}\n`;
  if (typeof system.errno === 'number' && system.syscall === 'connect') {
    const hint = endpoint.kind === 'socket' ? 'Is the server running locally and accepting connections on that socket?' : 'Is the server running on that host and accepting TCP/IP connections?';
    return `${prefix}${strerror(-system.errno)}\n\t${hint}\n`;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Connection terminated unexpectedly') {
    return `${prefix}server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n`;
  }
  return `${prefix}${message}\n`;
}
