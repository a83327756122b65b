import { type TSchema, Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import type { App } from '../../platform/http/http-types.ts';
import { formatQuery, negotiateFormat, type ReportFormat, sendReport } from '../../platform/http/report-formats.ts';
import { problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { checkDate } from '../dates.ts';
import {
  DateSchema,
  datePattern,
  decodeCursor,
  EntityParams,
  encodeCursor,
  pathId,
  uuidPattern,
} from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import { taxForms } from '../ledger.types.ts';
import type { ReportRenderer } from './report-renderer.ts';
import {
  balanceSheetJson,
  balanceSheetSections,
  generalLedgerCsv,
  generalLedgerJson,
  incomeStatementJson,
  incomeStatementSections,
  statementCsv,
  trialBalanceCsv,
  trialBalanceJson,
} from './reports.render.ts';
import { BalanceSheetBody, GeneralLedgerBody, IncomeStatementBody, TrialBalanceBody } from './reports.schemas.ts';
import type { ReportsService } from './reports.service.ts';
import { balanceSheetTable, incomeStatementTable, trialBalanceTable } from './statement-table.ts';

const statementFormats: readonly ReportFormat[] = ['json', 'csv', 'xlsx', 'pdf'];
const Format = formatQuery(statementFormats);
const ledgerFormats: readonly ReportFormat[] = ['json', 'csv'];
const LedgerFormat = formatQuery(ledgerFormats);
const View = Type.Union([Type.Literal('transaction'), Type.Literal('base')], {
  default: 'transaction',
  description:
    'transaction: one section per line currency; base: every line in the base currency at its posted rate, with the rates and remeasurement.',
});
const Verify = Type.Boolean({
  default: false,
  description: 'Also tie every balance to a GROUP BY over the journal lines.',
});
function reportResponse(body: TSchema, formats: readonly ReportFormat[]) {
  const files = formats.filter((format) => format !== 'json').join(', ');
  return {
    200: { ...body, description: `The report as JSON; as ${files} by ?format= or the Accept header.` },
    ...problemResponses,
  };
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

function optionalDate(value: string | undefined, name: string): string | undefined {
  return value === undefined ? undefined : checkDate(value, name);
}

export async function reportsRoutes(
  app: App,
  options: { reports: ReportsService; renderer: ReportRenderer },
): Promise<void> {
  const { reports, renderer } = options;

  app.get(
    '/v1/entities/:entityId/reports/trial-balance',
    {
      config: { routeClass: 'report', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: 'Trial balance as of a date: unadjusted, adjustments, adjusted and comparative columns',
        tags: ['reports'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          {
            asOf: Type.Optional(DateSchema),
            compareAsOf: Type.Optional(DateSchema),
            basis: Type.Union([Type.Literal('pre-closing'), Type.Literal('post-closing')], { default: 'pre-closing' }),
            taxForm: Type.Optional(Type.Union(taxForms.map((form) => Type.Literal(form)))),
            format: Format,
            view: View,
            verify: Verify,
          },
          { additionalProperties: false },
        ),
        response: reportResponse(TrialBalanceBody, statementFormats),
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const query = request.query;
      const report = await reports.trialBalance(principal.tenant, entityId, {
        asOf: checkDate(query.asOf ?? today(), 'asOf'),
        compareAsOf: optionalDate(query.compareAsOf, 'compareAsOf'),
        basis: query.basis,
        taxForm: query.taxForm,
        view: query.view,
        verify: query.verify,
      });
      return await sendReport(
        reply,
        negotiateFormat(query.format, request.headers.accept, statementFormats),
        `trial-balance-${report.asOf}`,
        {
          json: () => trialBalanceJson(entityId, report),
          csv: () => trialBalanceCsv(report),
          xlsx: () => renderer.xlsx(trialBalanceTable(entityId, report)),
          pdf: () => renderer.pdf(trialBalanceTable(entityId, report)),
        },
      );
    },
  );

  app.get(
    '/v1/entities/:entityId/reports/income-statement',
    {
      config: { routeClass: 'report', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: 'Income statement for a date range with the prior-year range as comparative',
        tags: ['reports'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          {
            from: Type.Optional(DateSchema),
            to: Type.Optional(DateSchema),
            compareFrom: Type.Optional(DateSchema),
            compareTo: Type.Optional(DateSchema),
            format: Format,
            view: View,
            verify: Verify,
          },
          { additionalProperties: false },
        ),
        response: reportResponse(IncomeStatementBody, statementFormats),
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const query = request.query;
      const report = await reports.incomeStatement(principal.tenant, entityId, {
        from: optionalDate(query.from, 'from'),
        to: checkDate(query.to ?? today(), 'to'),
        compareFrom: optionalDate(query.compareFrom, 'compareFrom'),
        compareTo: optionalDate(query.compareTo, 'compareTo'),
        view: query.view,
        verify: query.verify,
      });
      return await sendReport(
        reply,
        negotiateFormat(query.format, request.headers.accept, statementFormats),
        `income-statement-${report.from}-${report.to}`,
        {
          json: () => incomeStatementJson(entityId, report),
          csv: () => statementCsv(incomeStatementSections(report)),
          xlsx: () => renderer.xlsx(incomeStatementTable(entityId, report)),
          pdf: () => renderer.pdf(incomeStatementTable(entityId, report)),
        },
      );
    },
  );

  app.get(
    '/v1/entities/:entityId/reports/balance-sheet',
    {
      config: { routeClass: 'report', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: 'Balance sheet as of a date with a comparative date',
        tags: ['reports'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          {
            asOf: Type.Optional(DateSchema),
            compareAsOf: Type.Optional(DateSchema),
            format: Format,
            view: View,
            verify: Verify,
          },
          { additionalProperties: false },
        ),
        response: reportResponse(BalanceSheetBody, statementFormats),
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const query = request.query;
      const report = await reports.balanceSheet(principal.tenant, entityId, {
        asOf: checkDate(query.asOf ?? today(), 'asOf'),
        compareAsOf: optionalDate(query.compareAsOf, 'compareAsOf'),
        view: query.view,
        verify: query.verify,
      });
      return await sendReport(
        reply,
        negotiateFormat(query.format, request.headers.accept, statementFormats),
        `balance-sheet-${report.asOf}`,
        {
          json: () => balanceSheetJson(entityId, report),
          csv: () => statementCsv(balanceSheetSections(report)),
          xlsx: () => renderer.xlsx(balanceSheetTable(entityId, report)),
          pdf: () => renderer.pdf(balanceSheetTable(entityId, report)),
        },
      );
    },
  );

  app.get(
    '/v1/entities/:entityId/reports/general-ledger',
    {
      config: { routeClass: 'report', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: "One account's lines with a running balance, a page at a time",
        tags: ['reports'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          {
            accountId: Type.String({ maxLength: 100 }),
            currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
            from: Type.Optional(DateSchema),
            to: Type.Optional(DateSchema),
            limit: Type.Integer({
              minimum: 1,
              maximum: ledgerLimits.pageSizeMax,
              default: ledgerLimits.pageSizeDefault,
            }),
            cursor: Type.Optional(Type.String({ maxLength: 400 })),
            format: LedgerFormat,
          },
          { additionalProperties: false },
        ),
        response: reportResponse(GeneralLedgerBody, ledgerFormats),
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const query = request.query;
      const after = decodeCursor(query.cursor, (value) =>
        typeof value.date === 'string' &&
        datePattern.test(value.date) &&
        typeof value.entryId === 'string' &&
        uuidPattern.test(value.entryId) &&
        Number.isInteger(value.lineNo) &&
        typeof value.running === 'string' &&
        /^-?[0-9]{1,40}$/.test(value.running)
          ? { date: value.date, entryId: value.entryId, lineNo: Number(value.lineNo), running: value.running }
          : null,
      );
      const page = await reports.generalLedger(principal.tenant, entityId, {
        accountId: pathId('account', query.accountId, 'ACCOUNT_NOT_FOUND'),
        currency: query.currency,
        from: optionalDate(query.from, 'from'),
        to: checkDate(query.to ?? today(), 'to'),
        after,
        limit: query.limit,
      });
      return await sendReport(
        reply,
        negotiateFormat(query.format, request.headers.accept, ledgerFormats),
        `general-ledger-${page.account.number}`,
        {
          json: () => generalLedgerJson(entityId, page, encodeCursor(page.next)),
          csv: () => generalLedgerCsv(page),
        },
      );
    },
  );
}
