import pg from 'pg';

/**
 * A tenant scope's first query, sent together with the statements that open the scope, in
 * one round trip: `begin`, then the scope's settings (set_config, bound parameters), then the
 * query, all before one Sync. PostgreSQL runs the messages in order and, if one fails, skips
 * the rest up to the Sync, so the query never runs outside the opened, scoped transaction.
 * The transaction is explicit, so it stays open after the Sync for the scope's next queries.
 *
 * node-postgres sends one statement per round trip and has no pipeline mode; this subclasses
 * its Query (the documented Submittable extension point) and only adds the opening messages
 * in front of the query's own, and drops their replies before the query's results.
 */
export interface ScopeSettings {
  /** One statement returning one row, whose first column must come back as `expected`. */
  text: string;
  values: string[];
  expected: string;
}

type Connection = {
  parse(message: { text: string; name?: string; types?: unknown[] }): void;
  bind(message: { values: unknown[] }): void;
  execute(message: { portal?: string; rows?: number }): void;
  sync(): void;
  parsedStatements: Record<string, string>;
};

type QueryInternals = {
  prepare(connection: Connection): void;
  _getRows(connection: Connection, rows: number | undefined): void;
  handleDataRow(message: { fields: (string | null)[] }): void;
  handleCommandComplete(message: unknown, connection: Connection): void;
  handleError(error: Error, connection: Connection): void;
  handleReadyForQuery(connection: Connection): void;
  name?: string;
  portal?: string;
};

const QueryBase = pg.Query as unknown as new (config: pg.QueryConfig) => QueryInternals & pg.Submittable;

/** The replies of `begin` and of the settings statement, each ended by its CommandComplete. */
const openingStatements = 2;

class ScopeOpeningQuery extends QueryBase {
  readonly #settings: ScopeSettings;
  /** Whether a `commit` follows the query before the Sync: the scope's one and only statement. */
  readonly #closing: boolean;
  #openingLeft = openingStatements;
  #queryCompleted = false;
  #settingReturned: string | null = null;
  #parsedHere = false;

  constructor(settings: ScopeSettings, query: pg.QueryConfig, closing: boolean) {
    // Extended protocol always, even for a query without parameters, so all of it goes before one Sync.
    super({ ...query, queryMode: 'extended' } as pg.QueryConfig);
    this.#settings = settings;
    this.#closing = closing;
  }

  override prepare(connection: Connection): void {
    connection.parse({ text: 'begin' });
    connection.bind({ values: [] });
    connection.execute({});
    connection.parse({ text: this.#settings.text });
    connection.bind({ values: this.#settings.values });
    connection.execute({});
    this.#parsedHere = this.name !== undefined && connection.parsedStatements[this.name] === undefined;
    super.prepare(connection);
  }

  // node-postgres sends the query's Execute and then the Sync here; a closing query puts its
  // commit between the two.
  override _getRows(connection: Connection, rows: number | undefined): void {
    if (!this.#closing) {
      super._getRows(connection, rows);
      return;
    }
    connection.execute({ portal: this.portal, rows });
    connection.parse({ text: 'commit' });
    connection.bind({ values: [] });
    connection.execute({});
    connection.sync();
  }

  override handleDataRow(message: { fields: (string | null)[] }): void {
    if (this.#openingLeft === 0) super.handleDataRow(message);
    else if (this.#openingLeft === 1) this.#settingReturned = message.fields[0] ?? null;
  }

  override handleCommandComplete(message: unknown, connection: Connection): void {
    if (this.#openingLeft > 0) {
      this.#openingLeft -= 1;
      return;
    }
    // A closing query's second completion is its commit's.
    if (this.#queryCompleted) return;
    this.#queryCompleted = true;
    super.handleCommandComplete(message, connection);
  }

  override handleError(error: Error, connection: Connection): void {
    // node-postgres marks a named statement parsed at the first ParseComplete it sees, which
    // here may be the opening's: if anything failed, this query's own Parse may not have run.
    if (this.#parsedHere && this.name !== undefined) delete connection.parsedStatements[this.name];
    super.handleError(error, connection);
  }

  override handleReadyForQuery(connection: Connection): void {
    if (this.#openingLeft === 0 && this.#settingReturned !== this.#settings.expected) {
      this.handleError(new Error('the tenant scope setting did not take'), connection);
    } else {
      super.handleReadyForQuery(connection);
    }
  }
}

/**
 * Runs `query` behind the scope's opening, in one round trip, and resolves to its result. With
 * `closing`, the transaction's commit goes in the same round trip, after the query: for a scope
 * whose one statement is this query. If the query fails, PostgreSQL skips the commit with the
 * rest up to the Sync, and the transaction is left failed for the scope to roll back.
 */
export function queryOpening<Row extends pg.QueryResultRow>(
  client: pg.ClientBase,
  settings: ScopeSettings,
  query: pg.QueryConfig,
  closing = false,
): Promise<pg.QueryResult<Row>> {
  return new Promise((resolve, reject) => {
    const callback = (error: Error | null, result: pg.QueryResult<Row>) => (error ? reject(error) : resolve(result));
    client.query(new ScopeOpeningQuery(settings, { ...query, callback } as pg.QueryConfig, closing));
  });
}
