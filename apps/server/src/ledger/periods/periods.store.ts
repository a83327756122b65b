import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { newUuid } from '../../platform/ids.ts';
import { addMonths, fiscalPosition, fiscalYearStart } from '../dates.ts';

/** Periods, their events and close checklists in PostgreSQL. */
export interface Period {
  month: string;
  fiscalYear: number;
  periodNumber: number;
  status: 'open' | 'closed';
  closedBy: string | null;
  closedAt: Date | null;
}

export interface PeriodEvent {
  id: string;
  action: 'close' | 'reopen' | 'year_end_close';
  reason: string | null;
  actor: string;
  occurredAt: Date;
}

interface PeriodRow {
  month: string;
  fiscal_year: number;
  period_number: number;
  status: Period['status'];
  closed_by: string | null;
  closed_at: Date | null;
}

const periodColumns = 'period_month::text as month, fiscal_year, period_number, status, closed_by, closed_at';

function fromRow(row: PeriodRow): Period {
  return {
    month: row.month,
    fiscalYear: row.fiscal_year,
    periodNumber: row.period_number,
    status: row.status,
    closedBy: row.closed_by,
    closedAt: row.closed_at,
  };
}

/** The twelve months of a fiscal year, created open on first use. */
export async function ensureFiscalYear(
  db: TenantDb,
  entityId: string,
  fiscalYear: number,
  fiscalYearEnd: string,
): Promise<Period[]> {
  const first = fiscalYearStart(fiscalYear, fiscalYearEnd);
  const months = Array.from({ length: 12 }, (_, index) => addMonths(first, index));
  await db.query(
    `insert into periods (tenant_id, entity_id, period_month, fiscal_year, period_number)
     select $1, $2, m.month, $3, m.number from unnest($4::date[], $5::smallint[]) as m(month, number)
     on conflict do nothing`,
    [db.tenantId, entityId, fiscalYear, months, months.map((_, index) => index + 1)],
  );
  const { rows } = await db.query<PeriodRow>(
    `select ${periodColumns} from periods where entity_id = $1 and fiscal_year = $2 order by period_month`,
    [entityId, fiscalYear],
  );
  return rows.map(fromRow);
}

/** Locks a period row after creating its fiscal year if needed. */
export async function lockPeriod(
  db: TenantDb,
  entityId: string,
  month: string,
  fiscalYearEnd: string,
): Promise<Period> {
  const { fiscalYear } = fiscalPosition(month, fiscalYearEnd);
  await ensureFiscalYear(db, entityId, fiscalYear, fiscalYearEnd);
  const { rows } = await db.query<PeriodRow>(
    `select ${periodColumns} from periods where entity_id = $1 and period_month = $2 for update`,
    [entityId, month],
  );
  const row = rows[0];
  if (!row) throw new Error(`period ${month} missing right after it was ensured`);
  return fromRow(row);
}

/**
 * Waits for in-flight postings of the entity to commit before a close changes what they may
 * do; pairs with the shared lock the posting trigger takes (0004_ledger.sql).
 */
export async function excludePostings(db: TenantDb, entityId: string): Promise<void> {
  await db.query(`select pg_advisory_xact_lock(hashtextextended('ledger-periods:' || $1::text, 0))`, [entityId]);
}

export async function setPeriodStatus(
  db: TenantDb,
  entityId: string,
  month: string,
  status: Period['status'],
  actor: string,
): Promise<Period> {
  const { rows } = await db.query<PeriodRow>(
    `update periods set status = $3, closed_by = case when $3 = 'closed' then $4::uuid end,
                        closed_at = case when $3 = 'closed' then now() end
      where entity_id = $1 and period_month = $2 returning ${periodColumns}`,
    [entityId, month, status, actor],
  );
  const row = rows[0];
  if (!row) throw new Error(`period ${month} vanished inside its own transaction`);
  return fromRow(row);
}

export async function insertPeriodEvent(
  db: TenantDb,
  entityId: string,
  month: string,
  action: PeriodEvent['action'],
  actor: string,
  reason: string | null,
): Promise<void> {
  await db.query(
    `insert into period_events (tenant_id, entity_id, id, period_month, action, reason, actor)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [db.tenantId, entityId, newUuid(), month, action, reason, actor],
  );
}

export async function periodEvents(db: TenantDb, entityId: string, month: string): Promise<PeriodEvent[]> {
  const { rows } = await db.query<{
    id: string;
    action: PeriodEvent['action'];
    reason: string | null;
    actor: string;
    occurred_at: Date;
  }>(
    `select id, action, reason, actor, occurred_at from period_events
      where entity_id = $1 and period_month = $2 order by occurred_at, id`,
    [entityId, month],
  );
  return rows.map((row) => ({
    id: row.id,
    action: row.action,
    reason: row.reason,
    actor: row.actor,
    occurredAt: row.occurred_at,
  }));
}

/** Net debit-minus-credit of each revenue and expense account over months, per currency. */
export async function incomeBalances(
  db: TenantDb,
  entityId: string,
  firstMonth: string,
  lastMonth: string,
): Promise<Array<{ accountId: string; currency: string; netMinor: bigint; baseNetMinor: bigint }>> {
  const { rows } = await db.query<{ account_id: string; currency: string; net: string; base_net: string }>(
    `select b.account_id, b.currency, (sum(b.debit_minor) - sum(b.credit_minor))::text as net,
            (sum(b.base_debit_minor) - sum(b.base_credit_minor))::text as base_net
       from account_balances b
       join accounts a on a.tenant_id = b.tenant_id and a.id = b.account_id
      where b.entity_id = $1 and b.period_month between $2 and $3 and a.account_type in ('revenue', 'expense')
      group by b.account_id, b.currency
     having sum(b.debit_minor) <> sum(b.credit_minor)
      order by b.account_id, b.currency`,
    [entityId, firstMonth, lastMonth],
  );
  return rows.map((row) => ({
    accountId: row.account_id,
    currency: row.currency,
    netMinor: BigInt(row.net),
    baseNetMinor: BigInt(row.base_net),
  }));
}

export async function retainedEarningsAccount(db: TenantDb, entityId: string): Promise<string | null> {
  const { rows } = await db.query<{ id: string }>(
    `select id from accounts where entity_id = $1 and system_role = 'retained_earnings' and active`,
    [entityId],
  );
  return rows[0]?.id ?? null;
}
