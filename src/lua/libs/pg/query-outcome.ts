// What a query sent for a script comes to (docs/pg.md).

export interface QueryRequest {
  readonly sql: string;
  /** Parameters $1…$n (null = SQL NULL); undefined: the simple query protocol. */
  readonly params?: readonly (string | null)[];
}

export type QueryOutcome =
  /** Rows of the last result, every value in PostgreSQL's text format. */
  | { readonly kind: 'result'; readonly fields: readonly string[]; readonly rows: readonly (readonly (string | null)[])[] }
  /** An SQL error, or no connection before sending: `nil, message`. */
  | { readonly kind: 'error'; readonly message: string }
  /** The connection broke while the query ran: no values at all. */
  | { readonly kind: 'broken' };
