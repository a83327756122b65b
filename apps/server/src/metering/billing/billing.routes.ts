import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { OperatorAudit } from '../../audit/operator-audit.ts';
import { requestOrigin } from '../../audit/request-origin.ts';
import { requireOperator } from '../../identity/auth.plugin.ts';
import { AppError } from '../../platform/errors.ts';
import type { App } from '../../platform/http/http-types.ts';
import {
  formatQuery,
  negotiateFormat,
  type ReportFormat,
  type ReportRenderers,
  sendReport,
} from '../../platform/http/report-formats.ts';
import { operatorSecurity, problemResponses } from '../../platform/http/schemas.ts';
import { formatId, parseId } from '../../platform/ids.ts';
import { type CsvValue, toCsv } from '../csv.ts';
import {
  type BilledInvoice,
  type BillingService,
  type MarginRow,
  type PlanFitRow,
  pricedContent,
} from './billing.service.ts';
import type { CostReport, Invoice } from './billing.types.ts';
import { curLimits } from './cur-import.ts';

const monthLabel = Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'Calendar month in UTC, YYYY-MM.' });

const billingFormats: readonly ReportFormat[] = ['json', 'csv'];

const MonthQuery = Type.Object(
  {
    month: monthLabel,
    format: formatQuery(billingFormats),
  },
  { additionalProperties: false },
);

const Looseobject = (description: string) => Type.Object({}, { additionalProperties: true, description });

const tenantRef = (id: string) => formatId('tenant', id);

function renderCostReport(report: CostReport) {
  return { ...report, tenants: report.tenants.map((tenant) => ({ ...tenant, tenantId: tenantRef(tenant.tenantId) })) };
}

function renderInvoice(invoice: Invoice) {
  return { ...invoice, tenantId: tenantRef(invoice.tenantId) };
}

function costCsv(report: CostReport): string {
  const rows: CsvValue[][] = report.tenants.flatMap((tenant) =>
    tenant.lines.map((line) => [
      report.month,
      tenantRef(tenant.tenantId),
      tenant.tenantName,
      tenant.tier,
      tenant.placement,
      line.pool,
      line.kind,
      line.amountMinor,
    ]),
  );
  for (const pool of report.pools.filter((candidate) => candidate.unattributedMinor !== 0)) {
    rows.push([report.month, null, '(unattributed)', null, null, pool.name, pool.kind, pool.unattributedMinor]);
  }
  rows.push([report.month, null, '(total)', null, null, null, null, report.totalMinor]);
  return toCsv(
    ['month', 'tenant_id', 'tenant_name', 'tier', 'placement', 'pool', 'kind', `amount_minor_${report.currency}`],
    rows,
  );
}

function invoicesCsv(invoices: BilledInvoice[]): string {
  const rows = invoices.flatMap((invoice) =>
    invoice.lines.map((line) => [
      invoice.id,
      invoice.month,
      tenantRef(invoice.tenantId),
      invoice.tenantName,
      invoice.tier,
      invoice.currency,
      line.code,
      line.quantity,
      line.included,
      line.amountMinor,
      invoice.totalMinor,
      invoice.status,
    ]),
  );
  return toCsv(
    [
      'invoice_id',
      'month',
      'tenant_id',
      'tenant_name',
      'tier',
      'currency',
      'line',
      'quantity',
      'included',
      'amount_minor',
      'invoice_total_minor',
      'status',
    ],
    rows,
  );
}

function marginsCsv(month: string, rows: MarginRow[]): string {
  return toCsv(
    ['month', 'tenant_id', 'tenant_name', 'tier', 'revenue_minor', 'cost_minor', 'margin_minor'],
    rows.map((row) => [
      month,
      tenantRef(row.tenantId),
      row.tenantName,
      row.tier,
      row.revenueMinor,
      row.costMinor,
      row.marginMinor,
    ]),
  );
}

function planFitCsv(month: string, rows: PlanFitRow[]): string {
  return toCsv(
    [
      'month',
      'tenant_id',
      'tenant_name',
      'tier',
      'revenue_minor',
      'cost_minor',
      'margin_minor',
      'fit',
      'recommended_tier',
      'higher_tiers',
    ],
    rows.map((row) => [
      month,
      tenantRef(row.tenantId),
      row.tenantName,
      row.tier,
      row.revenueMinor,
      row.costMinor,
      row.marginMinor,
      row.fit,
      row.recommendedTier,
      row.higherTiers.map((tier) => `${tier.tier}=${tier.chargeMinor}`).join(' '),
    ]),
  );
}

/** ?format= wins, else the Accept header (platform/http/report-formats.ts). */
function formatOf(request: FastifyRequest<{ Querystring: { format?: ReportFormat | undefined } }>): ReportFormat {
  return negotiateFormat(request.query.format, request.headers.accept, billingFormats);
}

/** Operator routes: cost-to-serve, CUR import, invoices, margin and plan fit, each as JSON or CSV. */
export async function billingRoutes(
  app: App,
  options: { billing: BillingService; operatorAudit: OperatorAudit },
): Promise<void> {
  const { billing, operatorAudit } = options;
  app.addHook('onRequest', app.authenticateOperator);
  // The CUR arrives as the CSV file itself; this parser exists only inside this plugin.
  app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: curLimits.bytesMax }, (_request, body, done) =>
    done(null, body),
  );

  /** A month's operator report at `url`, as JSON or CSV (?format= or Accept), saved as `<name>-<month>`. */
  function monthReport(
    url: string,
    summary: string,
    shape: string,
    name: string,
    build: (month: string) => Promise<ReportRenderers>,
  ): void {
    app.get(
      url,
      {
        schema: {
          summary,
          tags: ['operator'],
          security: operatorSecurity,
          querystring: MonthQuery,
          response: { 200: Looseobject(shape), ...problemResponses },
        },
      },
      async (request, reply) =>
        await sendReport(reply, formatOf(request), `${name}-${request.query.month}`, await build(request.query.month)),
    );
  }

  monthReport(
    '/v1/admin/costs',
    'Cost-to-serve per tenant for a month; every cent of every pool attributed or shown as unattributed',
    'A cost report.',
    'cost-report',
    async (month) => {
      const report = await billing.costReport(month);
      return { json: () => renderCostReport(report), csv: () => costCsv(report) };
    },
  );

  app.post(
    '/v1/admin/cost-imports',
    {
      bodyLimit: curLimits.bytesMax,
      schema: {
        summary: 'Import an AWS Cost and Usage Report (CSV body); the same file twice is imported once',
        tags: ['operator'],
        security: operatorSecurity,
        querystring: Type.Object(
          { fileName: Type.String({ minLength: 1, maxLength: curLimits.fileNameLengthMax, default: 'cur.csv' }) },
          { additionalProperties: false },
        ),
        body: Type.String({ description: 'The CUR file, content-type text/csv.' }),
        response: {
          200: Looseobject('The existing import.'),
          201: Looseobject('The new import.'),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const result = await billing.importCur(request.body, request.query.fileName);
      return reply.code(result.created ? 201 : 200).send({ ...result, report: renderCostReport(result.report) });
    },
  );

  monthReport(
    '/v1/admin/invoices',
    'Usage-based invoices of every tenant for a month',
    '{ items: Invoice[] }',
    'invoices',
    async (month) => {
      const invoices = await billing.invoices(month);
      return { json: () => ({ items: invoices.map(renderInvoice) }), csv: () => invoicesCsv(invoices) };
    },
  );

  app.post(
    '/v1/admin/invoices/issue',
    {
      schema: {
        summary:
          'Issue a month that has ended: freeze every firm’s invoice; issuing again adds only firms not yet issued',
        tags: ['operator'],
        security: operatorSecurity,
        body: Type.Object({ month: monthLabel }, { additionalProperties: false }),
        response: {
          200: Looseobject('{ month, newlyIssued, items: Invoice[], auditsPending: { invoiceId, tenantId }[] }'),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const result = await billing.issue(request.body.month);
      // Each firm's log gets its own invoice, after the registry commits them; an event that
      // fails stays pending and is written when the month is issued again (migration 0025).
      const origin = requestOrigin(request, requireOperator(request));
      const auditsPending = await billing.appendPendingAudits(request.body.month, result.items, (invoice) =>
        operatorAudit.appendOnce(invoice.tenantId, origin, {
          action: 'invoice.issue',
          resource: { type: 'invoice', id: invoice.id },
          after: pricedContent(invoice),
          summary: { month: invoice.month, currency: invoice.currency, totalMinor: invoice.totalMinor },
        }),
      );
      const newlyIssued = result.newlyIssued.length;
      return {
        month: request.body.month,
        newlyIssued,
        items: result.items.map(renderInvoice),
        // Issued all the same; their events are written when the month is issued again.
        auditsPending: auditsPending.map((pending) => ({
          invoiceId: pending.invoiceId,
          tenantId: tenantRef(pending.tenantId),
        })),
      };
    },
  );

  app.get(
    '/v1/admin/tenants/:tenantId/invoices/:month',
    {
      schema: {
        summary: 'One tenant’s invoice for a month',
        tags: ['operator'],
        security: operatorSecurity,
        params: Type.Object(
          { tenantId: Type.String({ maxLength: 100 }), month: Type.String({ maxLength: 7 }) },
          { additionalProperties: false },
        ),
        response: { 200: Looseobject('An invoice.'), ...problemResponses },
      },
    },
    async (request) => {
      const id = parseId('tenant', request.params.tenantId);
      if (id === null) throw new AppError('TENANT_NOT_FOUND');
      return renderInvoice(await billing.invoice(id, request.params.month));
    },
  );

  monthReport(
    '/v1/admin/margins',
    'Revenue, cost-to-serve and margin per tenant for a month',
    '{ items: Margin[] }',
    'margins',
    async (month) => {
      const rows = await billing.margins(month);
      return {
        json: () => ({ month, items: rows.map((row) => ({ ...row, tenantId: tenantRef(row.tenantId) })) }),
        csv: () => marginsCsv(month, rows),
      };
    },
  );

  monthReport(
    '/v1/admin/plan-fit',
    'Tenants whose cost-to-serve exceeds their revenue, and what each higher tier would charge them',
    '{ items: PlanFit[] }',
    'plan-fit',
    async (month) => {
      const rows = await billing.planFit(month);
      return {
        json: () => ({ month, items: rows.map((row) => ({ ...row, tenantId: tenantRef(row.tenantId) })) }),
        csv: () => planFitCsv(month, rows),
      };
    },
  );
}
