import type pg from 'pg';

/**
 * Opens a pool's connections before the first request needs them, and has each one read the
 * catalog entries of the tenant tables (columns, indexes, row-level security policies).
 *
 * Why: a new PostgreSQL backend starts with empty catalog caches, so its first queries cost
 * several times their usual work, on top of the connection and its authentication. A pool
 * that grows on demand grows exactly when demand jumps: in the noisy-neighbour harness the
 * flood's burst opened seven connections at once on the two cores, and the quiet firms' p99
 * rose to 300-500 ms; with the pool opened and warmed at start, to 70-87 ms (bench/noisy-neighbour).
 * The pool keeps these connections (its `min`), so they stay warm.
 *
 * Returns the number of connections warmed.
 */
export async function warmPool(pool: pg.Pool, connections: number): Promise<number> {
  // Asked for together, so the pool opens a new connection for each, up to its max.
  const opened = await Promise.allSettled(Array.from({ length: connections }, () => pool.connect()));
  const clients = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  try {
    const failed = opened.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const [first] = clients;
    if (!first) return 0;
    const reads = await tenantTableReads(first);
    if (reads) await Promise.all(clients.map((client) => client.query(reads)));
    return clients.length;
  } finally {
    for (const client of clients) client.release();
  }
}

/** An empty read of every table under row-level security in the connection's schema. */
async function tenantTableReads(client: pg.PoolClient): Promise<string | null> {
  const { rows } = await client.query<{ reads: string | null }>(
    `select string_agg(format('select from %I.%I limit 0', n.nspname, c.relname), '; ' order by c.relname) as reads
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and c.relrowsecurity and n.nspname = current_schema()`,
  );
  return rows[0]?.reads ?? null;
}
