import type pg from 'pg';
import { inTransaction } from '../../platform/database/transaction.ts';
import { newUuid } from '../../platform/ids.ts';
import type { Invoice } from './billing.types.ts';
import type { CurSummaryLine, ParsedCur } from './cur-import.ts';

/** Cost imports in the control-plane tables (owner pool). */
export interface CostImport {
  id: string;
  month: string;
  fileName: string;
  sha256: string;
  lineCount: number;
  totalNanos: bigint;
  importedAt: Date;
  lines: CurSummaryLine[];
}

export interface BillingStore {
  /** Saves an import; the same file (sha256) again returns the first import and `created: false`. */
  saveImport(parsed: ParsedCur, fileName: string): Promise<{ created: boolean; id: string }>;
  /** The import in force for a month: the latest one. */
  latestImport(month: string): Promise<CostImport | null>;
  /**
   * Stores the invoices not yet issued for their tenant and month, each with its audit event
   * pending (the outbox, migration 0025); returns the ids of those new.
   */
  issueInvoices(invoices: readonly Invoice[]): Promise<string[]>;
  /**
   * Hands each invoice of the month whose audit event is pending, and not being written by
   * another issuer, to `append`; an invoice whose append resolves is no longer pending, nor is
   * one of a purged firm (it has no log). Every pending invoice is tried; returns those whose
   * append threw, each with its error.
   */
  drainInvoiceAudits(
    month: string,
    append: (pending: PendingInvoiceAudit) => Promise<void>,
  ): Promise<FailedInvoiceAudit[]>;
  /** Issued invoices of a month (all tenants, or one). */
  issuedInvoices(month: string, tenantId?: string): Promise<IssuedInvoice[]>;
  /** Issued invoices of `firstMonth` and every later month (all tenants, or one), by tenant and month. */
  issuedInvoicesFrom(firstMonth: string, tenantId?: string): Promise<IssuedInvoice[]>;
}

/** An issued invoice whose audit event is not yet in its firm's log. */
export interface PendingInvoiceAudit {
  invoiceId: string;
  tenantId: string;
}

/** A pending event whose append failed, with why. */
export type FailedInvoiceAudit = PendingInvoiceAudit & { error: unknown };

/** An invoice as it was issued: its content frozen, with the time it was issued. */
export interface IssuedInvoice {
  invoice: Invoice;
  issuedAt: Date;
}

interface ImportRow {
  id: string;
  month: string;
  file_name: string;
  source_sha256: string;
  line_count: number;
  total_nanos: string;
  imported_at: Date;
}

export class PgBillingStore implements BillingStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async saveImport(parsed: ParsedCur, fileName: string): Promise<{ created: boolean; id: string }> {
    const id = newUuid();
    const created = await inTransaction(this.#pool, async (client) => {
      const inserted = await client.query<{ id: string }>(
        `insert into cost_imports (id, month, source_sha256, file_name, line_count, total_nanos)
         values ($1, ($2 || '-01')::date, $3, $4, $5, $6)
         on conflict (source_sha256) do nothing returning id`,
        [id, parsed.month, parsed.sha256, fileName, parsed.lineCount, parsed.totalNanos.toString()],
      );
      // The same file again: nothing is written, and the first import's id is read below.
      if (inserted.rowCount === 0) return false;
      await client.query(
        `insert into cost_import_lines (import_id, line_no, product_code, tenant, amount_nanos)
         select $1, ordinality, product_code, tenant, amount_nanos
           from unnest($2::text[], $3::uuid[], $4::numeric[]) with ordinality as t(product_code, tenant, amount_nanos)`,
        [
          id,
          parsed.lines.map((line) => line.productCode),
          parsed.lines.map((line) => line.tenantId),
          parsed.lines.map((line) => line.amountNanos.toString()),
        ],
      );
      return true;
    });
    if (created) return { created: true, id };
    const { rows } = await this.#pool.query<{ id: string }>('select id from cost_imports where source_sha256 = $1', [
      parsed.sha256,
    ]);
    return { created: false, id: rows[0]?.id ?? '' };
  }

  async latestImport(month: string): Promise<CostImport | null> {
    const { rows } = await this.#pool.query<ImportRow>(
      `select id, to_char(month, 'YYYY-MM') as month, file_name, source_sha256, line_count, total_nanos::text, imported_at
         from cost_imports where month = ($1 || '-01')::date order by imported_at desc, id desc limit 1`,
      [month],
    );
    const row = rows[0];
    if (!row) return null;
    const lines = await this.#pool.query<{ product_code: string; tenant: string | null; amount_nanos: string }>(
      'select product_code, tenant, amount_nanos::text from cost_import_lines where import_id = $1 order by line_no',
      [row.id],
    );
    return {
      id: row.id,
      month: row.month,
      fileName: row.file_name,
      sha256: row.source_sha256,
      lineCount: row.line_count,
      totalNanos: BigInt(row.total_nanos),
      importedAt: row.imported_at,
      lines: lines.rows.map((line) => ({
        productCode: line.product_code,
        tenantId: line.tenant,
        amountNanos: BigInt(line.amount_nanos),
      })),
    };
  }

  async issueInvoices(invoices: readonly Invoice[]): Promise<string[]> {
    if (invoices.length === 0) return [];
    const result = await this.#pool.query<{ id: string }>(
      `with issued as (
         insert into issued_invoices (id, tenant, month, currency, total_minor, content, content_hash)
         select id, tenant, (month || '-01')::date, currency, total_minor, content, content_hash
           from unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::jsonb[], $7::text[])
             as t(id, tenant, month, currency, total_minor, content, content_hash)
         on conflict (tenant, month) do nothing
         returning id, tenant, month)
       insert into issued_invoice_audits_pending (invoice_id, tenant, month)
       select id, tenant, month from issued
       returning invoice_id as id`,
      [
        invoices.map((invoice) => invoice.id),
        invoices.map((invoice) => invoice.tenantId),
        invoices.map((invoice) => invoice.month),
        invoices.map((invoice) => invoice.currency),
        invoices.map((invoice) => invoice.totalMinor),
        invoices.map((invoice) => JSON.stringify(invoice)),
        invoices.map((invoice) => invoice.contentHash),
      ],
    );
    return result.rows.map((row) => row.id);
  }

  async drainInvoiceAudits(
    month: string,
    append: (pending: PendingInvoiceAudit) => Promise<void>,
  ): Promise<FailedInvoiceAudit[]> {
    return await inTransaction(this.#pool, async (client) => {
      // A purged firm's log is gone with its data: its pending events go too.
      await client.query(
        `delete from issued_invoice_audits_pending pending using tenants
          where tenants.id = pending.tenant and tenants.purged_at is not null
            and pending.month = ($1 || '-01')::date`,
        [month],
      );
      const { rows } = await client.query<{ invoice_id: string; tenant: string }>(
        `select invoice_id, tenant from issued_invoice_audits_pending
          where month = ($1 || '-01')::date
          order by invoice_id
          for update skip locked`,
        [month],
      );
      const failures: FailedInvoiceAudit[] = [];
      for (const row of rows) {
        const pending = { invoiceId: row.invoice_id, tenantId: row.tenant };
        try {
          await append(pending);
        } catch (error) {
          failures.push({ ...pending, error });
          continue;
        }
        await client.query('delete from issued_invoice_audits_pending where invoice_id = $1', [row.invoice_id]);
      }
      return failures;
    });
  }

  async issuedInvoices(month: string, tenantId?: string): Promise<IssuedInvoice[]> {
    const { rows } = await this.#pool.query<{ content: Invoice; issued_at: Date }>(
      `select content, issued_at from issued_invoices
        where month = ($1 || '-01')::date and ($2::uuid is null or tenant = $2)
        order by tenant`,
      [month, tenantId ?? null],
    );
    return rows.map((row) => ({ invoice: row.content, issuedAt: row.issued_at }));
  }

  async issuedInvoicesFrom(firstMonth: string, tenantId?: string): Promise<IssuedInvoice[]> {
    const { rows } = await this.#pool.query<{ content: Invoice; issued_at: Date }>(
      `select content, issued_at from issued_invoices
        where month >= ($1 || '-01')::date and ($2::uuid is null or tenant = $2)
        order by tenant, month`,
      [firstMonth, tenantId ?? null],
    );
    return rows.map((row) => ({ invoice: row.content, issuedAt: row.issued_at }));
  }
}
