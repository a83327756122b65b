import type { Logger } from 'pino';
import { assert } from '../../platform/assert.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import type { TierCatalogue } from '../../tenancy/tiers.ts';
import { meteringLimits } from '../metering.limits.ts';
import type { MeteredTenant, UsageStore } from '../metering.store.ts';
import type { BillingStore, IssuedInvoice, PendingInvoiceAudit } from './billing.store.ts';
import type { BillingMonth, CostReport, Invoice, InvoiceLine, MonthUsage } from './billing.types.ts';
import { zeroUsage } from './billing.types.ts';
import {
  buildCostReport,
  type CostedTenant,
  divideRoundedSigned,
  modelPools,
  participantsFor,
  sharedPool,
} from './cost-attribution.ts';
import { type CostModel, currencyExponent } from './cost-model.ts';
import { parseCur } from './cur-import.ts';
import { lateUsageLines, ownLines, ownTotalMinor } from './late-usage.ts';
import { monthOf, priceInvoice, scheduleOfInvoice, unknownPricedMetrics } from './pricing.ts';

/** An invoice with its state: a draft recomputed from usage, or issued and frozen. */
export interface BilledInvoice extends Invoice {
  status: 'draft' | 'issued';
  issuedAt: Date | null;
  /**
   * For an issued invoice: whether its month's usage now prices differently from what was
   * issued (late usage, billed on a later invoice as a `late_usage:YYYY-MM` line).
   */
  usageChangedSinceIssue: boolean | null;
}

export function pricedContent(invoice: BilledInvoice): Invoice {
  const { status: _status, issuedAt: _issuedAt, usageChangedSinceIssue: _changed, ...content } = invoice;
  return content;
}

function drafted(draft: Invoice): BilledInvoice {
  return { ...draft, status: 'draft', issuedAt: null, usageChangedSinceIssue: null };
}

/** What a month's own lines charge, line by line; key order does not matter (jsonb reorders keys). */
function chargesOf(invoice: Invoice): string {
  return ownLines(invoice)
    .map((line) => `${line.code}:${line.quantity}:${line.amountMinor}`)
    .join(';');
}

function frozen(issued: IssuedInvoice, repriced: Invoice): BilledInvoice {
  const changed = chargesOf(repriced) !== chargesOf(issued.invoice);
  return { ...issued.invoice, status: 'issued', issuedAt: issued.issuedAt, usageChangedSinceIssue: changed };
}

/** Issued invoices of the months late usage may still adjust, and those months' usage now. */
interface LateUsageInputs {
  issuedByTenant: Map<string, Invoice[]>;
  usageByMonth: Map<string, Map<string, MonthUsage>>;
}

function monthsBefore(month: BillingMonth, count: number): string {
  const start = new Date(Date.UTC(month.start.getUTCFullYear(), month.start.getUTCMonth() - count, 1));
  return start.toISOString().slice(0, 7);
}

export interface MarginRow {
  tenantId: string;
  tenantName: string;
  tier: string;
  revenueMinor: number;
  costMinor: number;
  marginMinor: number;
}

export interface PlanFitRow extends MarginRow {
  /** ok: revenue covers cost; move_up: a higher tier would charge at least the cost; underpriced: no tier would. */
  fit: 'ok' | 'move_up' | 'underpriced';
  recommendedTier: string | null;
  higherTiers: Array<{ tier: string; chargeMinor: number; coversCost: boolean }>;
}

export interface CurImportResult {
  id: string;
  created: boolean;
  month: string;
  lineCount: number;
  unreadableTags: string[];
  report: CostReport;
}

/**
 * Cost-to-serve, invoices, margin and plan fit for a calendar month (UTC), computed from the
 * usage rollups — so the same events always give the same numbers — and from the cost model
 * or, when one was imported for the month, the AWS Cost and Usage Report.
 */
export class BillingService {
  readonly #usage: UsageStore;
  readonly #store: BillingStore;
  readonly #tiers: TierCatalogue;
  readonly #costs: CostModel;
  readonly #log: Logger;

  constructor(usage: UsageStore, store: BillingStore, tiers: TierCatalogue, costs: CostModel, log: Logger) {
    const unknown = unknownPricedMetrics(tiers.list());
    if (unknown.length > 0) throw new Error(`tier prices name metrics billing cannot measure: ${unknown.join(', ')}`);
    for (const tier of tiers.list()) currencyExponent(tier.prices.currency);
    this.#usage = usage;
    this.#store = store;
    this.#tiers = tiers;
    this.#costs = costs;
    this.#log = log;
  }

  /** Errors: METERING_MONTH_INVALID. */
  month(label: string): BillingMonth {
    const month = monthOf(label);
    if (month === null) throw new AppError('METERING_MONTH_INVALID', `"${label}" is not a month (YYYY-MM).`);
    return month;
  }

  /** Every tenant's usage for the month, from the month and day rollups. */
  async monthUsage(month: BillingMonth, tenantId?: string): Promise<Map<string, MonthUsage>> {
    const usage = new Map<string, MonthUsage>();
    const entry = (tenantId: string) => {
      const found = usage.get(tenantId) ?? { ...zeroUsage };
      usage.set(tenantId, found);
      return found;
    };
    for (const bucket of await this.#usage.monthBuckets(month.start, tenantId)) {
      const tenant = entry(bucket.tenantId);
      if (bucket.metric === 'requests') tenant.requests = bucket.quantitySum;
      else if (bucket.metric === 'compute_us') tenant.computeUs = bucket.quantitySum;
      else if (bucket.metric === 'database_us') tenant.databaseUs = bucket.quantitySum;
      else if (bucket.metric === 'job_us') tenant.jobUs = bucket.quantitySum;
      else if (bucket.metric === 'users') tenant.usersMax = bucket.quantityMax;
      else if (bucket.metric === 'entities') tenant.entitiesMax = bucket.quantityMax;
    }
    const byteDays = await this.#usage.gaugeDaySums('storage_bytes', month.start, month.end, tenantId);
    for (const [tenant, sum] of byteDays) entry(tenant).storageByteDays = sum;
    return usage;
  }

  /** Tenants that existed during the month: none is billed or costed for months before it joined. */
  async #tenants(month: BillingMonth): Promise<MeteredTenant[]> {
    return (await this.#usage.listTenants()).filter((tenant) => tenant.createdAt < month.end);
  }

  /** Errors: METERING_MONTH_INVALID. */
  async costReport(label: string): Promise<CostReport> {
    const month = this.month(label);
    const [tenants, usage, imported] = await Promise.all([
      this.#tenants(month),
      this.monthUsage(month),
      this.#store.latestImport(month.label),
    ]);
    const costed: CostedTenant[] = tenants.map((tenant) => ({
      id: tenant.id,
      name: tenant.name,
      tier: tenant.tier,
      placement: tenant.placement.model,
    }));
    if (imported === null) {
      return buildCostReport(
        { month: month.label, currency: this.#costs.currency, source: 'cost-model', importId: null, notes: [] },
        costed,
        modelPools(this.#costs, costed, usage, month),
      );
    }
    return this.#curReport(month, costed, usage, imported.id, imported.lines);
  }

  #curReport(
    month: BillingMonth,
    tenants: CostedTenant[],
    usage: Map<string, MonthUsage>,
    importId: string,
    lines: ReadonlyArray<{ productCode: string; tenantId: string | null; amountNanos: bigint }>,
  ): CostReport {
    const nanosPerMinor = 10n ** BigInt(9 - currencyExponent(this.#costs.currency));
    const known = new Set(tenants.map((tenant) => tenant.id));
    const notes: string[] = [];
    const tagged = new Map<string, Map<string, bigint>>();
    const untagged = new Map<string, bigint>();
    for (const line of lines) {
      if (line.tenantId !== null && known.has(line.tenantId)) {
        const byTenant = tagged.get(line.productCode) ?? new Map<string, bigint>();
        tagged.set(line.productCode, byTenant);
        byTenant.set(line.tenantId, (byTenant.get(line.tenantId) ?? 0n) + line.amountNanos);
      } else {
        if (line.tenantId !== null)
          notes.push(`${line.productCode}: tag names unknown tenant ${line.tenantId}; shared`);
        untagged.set(line.productCode, (untagged.get(line.productCode) ?? 0n) + line.amountNanos);
      }
    }
    const pools = [];
    for (const [product, byTenant] of [...tagged.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const shares = new Map(
        [...byTenant].map(([tenantId, nanos]) => [tenantId, divideRoundedSigned(nanos, nanosPerMinor)]),
      );
      const totalMinor = [...shares.values()].reduce((sum, share) => sum + share, 0n);
      pools.push({ name: `aws:${product}:tagged`, kind: 'tagged' as const, driver: null, totalMinor, shares });
    }
    for (const [product, nanos] of [...untagged.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const driver = this.#costs.curProductDrivers[product] ?? this.#costs.curDefaultDriver;
      const participants = participantsFor(driver, tenants);
      pools.push(
        sharedPool(`aws:${product}:shared`, driver, divideRoundedSigned(nanos, nanosPerMinor), participants, usage),
      );
    }
    const fileNanos = lines.reduce((sum, line) => sum + line.amountNanos, 0n);
    const poolsMinor = pools.reduce((sum, pool) => sum + pool.totalMinor, 0n);
    const difference = poolsMinor - divideRoundedSigned(fileNanos, nanosPerMinor);
    if (difference !== 0n) {
      notes.push(
        `each pool is rounded half-even on its own; their sum differs from the file total rounded once by ${difference} minor unit(s)`,
      );
    }
    return buildCostReport(
      { month: month.label, currency: this.#costs.currency, source: 'cur-import', importId, notes },
      tenants,
      pools,
    );
  }

  /** Errors: COST_IMPORT_INVALID, COST_IMPORT_MIXED_MONTHS. */
  async importCur(text: string, fileName: string): Promise<CurImportResult> {
    const parsed = await parseCur(text);
    if (parsed.currency !== this.#costs.currency) {
      throw new AppError(
        'COST_IMPORT_INVALID',
        `The report is in ${parsed.currency}; costs are kept in ${this.#costs.currency}.`,
      );
    }
    const saved = await this.#store.saveImport(parsed, fileName);
    this.#log.info(
      { importId: saved.id, month: parsed.month, created: saved.created },
      'cost and usage report imported',
    );
    return {
      id: saved.id,
      created: saved.created,
      month: parsed.month,
      lineCount: parsed.lineCount,
      unreadableTags: parsed.unreadableTags,
      report: await this.costReport(parsed.month),
    };
  }

  #invoiceFor(
    tenant: MeteredTenant,
    tierName: string,
    month: BillingMonth,
    usage: MonthUsage,
    adjustments: readonly InvoiceLine[] = [],
  ): Invoice {
    const tier = this.#tiers.find(tierName);
    if (!tier) throw new AppError('TENANT_UNKNOWN_TIER', `There is no tier named "${tierName}".`);
    const id = `inv_${month.label.replace('-', '')}_${formatId('tenant', tenant.id)}`;
    return priceInvoice(tenant, tier, month, usage, id, adjustments);
  }

  /** An issued invoice's month priced again from `usage`, with the prices it was issued with. */
  #repriced(issued: Invoice, usage: MonthUsage): Invoice {
    const month = monthOf(issued.month);
    assert(month !== null, 'an issued invoice names its month');
    return priceInvoice(
      { id: issued.tenantId, name: issued.tenantName },
      scheduleOfInvoice(issued),
      month,
      usage,
      issued.id,
    );
  }

  async #lateUsageInputs(month: BillingMonth, tenantId?: string): Promise<LateUsageInputs> {
    const first = monthsBefore(month, meteringLimits.lateUsageMonthsMax);
    const issued = await this.#store.issuedInvoicesFrom(first, tenantId);
    const issuedByTenant = new Map<string, Invoice[]>();
    for (const { invoice } of issued) {
      const list = issuedByTenant.get(invoice.tenantId) ?? [];
      issuedByTenant.set(invoice.tenantId, list);
      list.push(invoice);
    }
    const earlier = [...new Set(issued.map(({ invoice }) => invoice.month).filter((label) => label < month.label))];
    const usageByMonth = new Map(
      await Promise.all(
        earlier.map(async (label) => [label, await this.monthUsage(this.month(label), tenantId)] as const),
      ),
    );
    return { issuedByTenant, usageByMonth };
  }

  #adjustments(tenantId: string, month: BillingMonth, late: LateUsageInputs): InvoiceLine[] {
    return lateUsageLines(month.label, late.issuedByTenant.get(tenantId) ?? [], (issued) => {
      const usage = late.usageByMonth.get(issued.month)?.get(tenantId) ?? zeroUsage;
      return ownTotalMinor(this.#repriced(issued, usage));
    });
  }

  /**
   * A tenant's invoice for a month: the issued one when the month was issued (with whether
   * usage changed since), else the draft computed from the rollups, with the late usage of
   * earlier issued months. Errors: METERING_MONTH_INVALID, TENANT_NOT_FOUND, TENANT_UNKNOWN_TIER.
   */
  async invoice(tenantId: string, label: string): Promise<BilledInvoice> {
    const month = this.month(label);
    const tenant = await this.#usage.findTenant(tenantId);
    if (!tenant) throw new AppError('TENANT_NOT_FOUND');
    // One firm's usage only, this month and each earlier issued month late usage may adjust.
    const [usage, [issued], late] = await Promise.all([
      this.monthUsage(month, tenant.id),
      this.#store.issuedInvoices(month.label, tenant.id),
      this.#lateUsageInputs(month, tenant.id),
    ]);
    const tenantUsage = usage.get(tenant.id) ?? zeroUsage;
    if (issued !== undefined) return frozen(issued, this.#repriced(issued.invoice, tenantUsage));
    return drafted(
      this.#invoiceFor(tenant, tenant.tier, month, tenantUsage, this.#adjustments(tenant.id, month, late)),
    );
  }

  /**
   * Every tenant whose tier is in the catalogue, issued or draft, plus issued invoices of
   * tenants no longer in the registry. Errors: METERING_MONTH_INVALID.
   */
  async invoices(label: string): Promise<BilledInvoice[]> {
    const month = this.month(label);
    const [tenants, usage, issued, late] = await Promise.all([
      this.#tenants(month),
      this.monthUsage(month),
      this.#store.issuedInvoices(month.label),
      this.#lateUsageInputs(month),
    ]);
    const issuedByTenant = new Map(issued.map((entry) => [entry.invoice.tenantId, entry]));
    const usageOf = (tenantId: string) => usage.get(tenantId) ?? zeroUsage;
    const current = tenants
      .filter((tenant) => this.#tiers.find(tenant.tier) !== undefined)
      .map((tenant) => {
        const entry = issuedByTenant.get(tenant.id);
        if (entry !== undefined) return frozen(entry, this.#repriced(entry.invoice, usageOf(tenant.id)));
        const adjustments = this.#adjustments(tenant.id, month, late);
        return drafted(this.#invoiceFor(tenant, tenant.tier, month, usageOf(tenant.id), adjustments));
      });
    const listed = new Set(current.map((invoice) => invoice.tenantId));
    const departed = issued
      .filter((entry) => !listed.has(entry.invoice.tenantId))
      .map((entry) => frozen(entry, this.#repriced(entry.invoice, usageOf(entry.invoice.tenantId))));
    return [...current, ...departed];
  }

  /**
   * Issues a closed month: freezes each tenant's invoice as computed now, with the late usage
   * of earlier issued months as adjustment lines. Issuing again adds only tenants not yet
   * issued; an issued invoice never changes (its own late usage goes on a later invoice).
   * Returns every issued invoice of the month and those this call issued.
   * Errors: METERING_MONTH_INVALID, METERING_MONTH_OPEN.
   */
  async issue(
    label: string,
    nowMs: number = Date.now(),
  ): Promise<{ newlyIssued: BilledInvoice[]; items: BilledInvoice[] }> {
    const month = this.month(label);
    const closesAtMs = month.end.getTime() + meteringLimits.invoiceIssueGraceMs;
    if (nowMs < closesAtMs) {
      throw new AppError(
        'METERING_MONTH_OPEN',
        `${month.label} can be issued from ${new Date(closesAtMs).toISOString()}, when its usage is complete.`,
      );
    }
    const drafts = (await this.invoices(label)).filter((invoice) => invoice.status === 'draft');
    const newIds = new Set(await this.#store.issueInvoices(drafts.map(pricedContent)));
    this.#log.info({ month: month.label, newlyIssued: newIds.size }, 'invoices issued');
    const items = (await this.invoices(label)).filter((invoice) => invoice.status === 'issued');
    return { newlyIssued: items.filter((invoice) => newIds.has(invoice.id)), items };
  }

  /**
   * Hands `append` each issued invoice of the month whose audit event is still pending: those
   * `issue` just issued, and any whose event failed on an earlier call (the outbox, migration
   * 0025). Every pending invoice is tried; those whose append failed (the firm's database is
   * unreachable, say) stay pending, are logged, and are returned, so the caller can say so
   * beside invoices that were issued all the same; issuing the month again writes them.
   * `items` are the month's issued invoices, as `issue` returns them.
   * Errors: METERING_MONTH_INVALID.
   */
  async appendPendingAudits(
    label: string,
    items: readonly BilledInvoice[],
    append: (invoice: BilledInvoice) => Promise<void>,
  ): Promise<PendingInvoiceAudit[]> {
    const month = this.month(label);
    const byId = new Map(items.map((invoice) => [invoice.id, invoice]));
    const failures = await this.#store.drainInvoiceAudits(month.label, async ({ invoiceId }) => {
      const invoice = byId.get(invoiceId);
      assert(invoice !== undefined, `pending audit of invoice ${invoiceId} is not among the month's issued invoices`);
      await append(invoice);
    });
    for (const failure of failures) {
      this.#log.error(
        { err: failure.error, invoiceId: failure.invoiceId, tenantId: failure.tenantId, month: month.label },
        "an issued invoice's audit event could not be written to its firm's log; it stays pending",
      );
    }
    return failures.map(({ invoiceId, tenantId }) => ({ invoiceId, tenantId }));
  }

  /**
   * Revenue − cost-to-serve, per tenant. Revenue is what the month's own usage is billed
   * (base fee and usage lines), without late usage of earlier months adjusted on the invoice.
   * Errors: METERING_MONTH_INVALID.
   */
  async margins(label: string): Promise<MarginRow[]> {
    const [invoices, costs] = await Promise.all([this.invoices(label), this.costReport(label)]);
    const costByTenant = new Map(costs.tenants.map((tenant) => [tenant.tenantId, tenant.totalMinor]));
    return invoices.map((invoice) => {
      const costMinor = costByTenant.get(invoice.tenantId) ?? 0;
      const revenueMinor = ownTotalMinor(invoice);
      return {
        tenantId: invoice.tenantId,
        tenantName: invoice.tenantName,
        tier: invoice.tier,
        revenueMinor,
        costMinor,
        marginMinor: revenueMinor - costMinor,
      };
    });
  }

  /**
   * Plan fit: for each tenant, what every higher tier (a larger base fee, same currency)
   * would charge for the same usage. A tenant whose cost-to-serve exceeds its revenue is
   * `move_up` to the cheapest higher tier whose charge covers the cost, or `underpriced`
   * when none does. Errors: METERING_MONTH_INVALID.
   */
  async planFit(label: string): Promise<PlanFitRow[]> {
    const month = this.month(label);
    const [margins, tenants, usage] = await Promise.all([
      this.margins(label),
      this.#tenants(month),
      this.monthUsage(month),
    ]);
    const byId = new Map(tenants.map((tenant) => [tenant.id, tenant]));
    return margins.map((row) => {
      const tenant = byId.get(row.tenantId);
      const current = this.#tiers.find(row.tier);
      assert(tenant !== undefined && current !== undefined, 'margin rows come from priced tenants');
      const higher = this.#tiers
        .list()
        .filter(
          (tier) =>
            tier.prices.currency === current.prices.currency && tier.prices.baseFeeMinor > current.prices.baseFeeMinor,
        )
        .map((tier) => {
          const charge = this.#invoiceFor(tenant, tier.name, month, usage.get(tenant.id) ?? zeroUsage).totalMinor;
          return { tier: tier.name, chargeMinor: charge, coversCost: charge >= row.costMinor };
        })
        .sort((a, b) => a.chargeMinor - b.chargeMinor || (a.tier < b.tier ? -1 : 1));
      if (row.costMinor <= row.revenueMinor) return { ...row, fit: 'ok', recommendedTier: null, higherTiers: higher };
      const covering = higher.find((candidate) => candidate.coversCost);
      return covering
        ? { ...row, fit: 'move_up', recommendedTier: covering.tier, higherTiers: higher }
        : { ...row, fit: 'underpriced', recommendedTier: null, higherTiers: higher };
    });
  }
}
