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
  const { rows } = await db.query<BooksRow>(loadBooksStatement, [entityId]);
  return booksOf(entityId, rows[0]);
}

/** The entity's columns a query selects for its books (loadBooks, and reports with their accounts). */
export interface BooksRow {
  base_currency: string;
  fiscal_year_end: string;
  status: Books['status'];
}

/** The books of a row as BooksRow selects them; no row is a missing entity. Errors: ENTITY_NOT_FOUND. */
export function booksOf(entityId: string, row: BooksRow | undefined): Books {
  if (!row) throw new AppError('ENTITY_NOT_FOUND');
  return { entityId, baseCurrency: row.base_currency, fiscalYearEnd: row.fiscal_year_end, status: row.status };
}
