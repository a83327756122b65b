import type { NamedStatement, TenantDb } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';

/** The entity whose books a ledger request works on, as the ledger needs it. */
export interface Books {
  entityId: string;
  baseCurrency: string;
  fiscalYearEnd: string;
  status: 'active' | 'archived';
}

/** Every ledger request starts here, so it is planned once per connection, not each time. */
const loadBooksStatement: NamedStatement = {
  name: 'ledger_load_books',
  text: 'select base_currency, fiscal_year_end, status from entities where id = $1',
};

/**
 * Reads the entity inside the caller's scope; row-level security hides other tenants' and
 * out-of-scope entities, so they are the same 404 as a missing one.
 * Errors: ENTITY_NOT_FOUND.
 */
export async function loadBooks(db: TenantDb, entityId: string): Promise<Books> {
  const { rows } = await db.query<{ base_currency: string; fiscal_year_end: string; status: Books['status'] }>(
    loadBooksStatement,
    [entityId],
  );
  const row = rows[0];
  if (!row) throw new AppError('ENTITY_NOT_FOUND');
  return { entityId, baseCurrency: row.base_currency, fiscalYearEnd: row.fiscal_year_end, status: row.status };
}
