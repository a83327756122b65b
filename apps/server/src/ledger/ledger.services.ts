import type { ChartSeeder } from '../entities/entities.types.ts';
import type { TenantScopes } from '../platform/database/tenant-scope.ts';
import { AccountsService, applyChartTemplate } from './accounts/accounts.service.ts';
import { chartTemplates } from './accounts/chart-templates.ts';
import { JournalService } from './journal/journal.service.ts';
import { PeriodsService } from './periods/periods.service.ts';
import { ExchangeRatesService } from './rates/exchange-rates.service.ts';
import type { ReportRenderer } from './reports/report-renderer.ts';
import { ReportsService } from './reports/reports.service.ts';
import { AdjustmentsService } from './signoff/adjustments.service.ts';

/** The accounting core's services, built once by the platform. */
export interface LedgerServices {
  accounts: AccountsService;
  journal: JournalService;
  periods: PeriodsService;
  adjustments: AdjustmentsService;
  reports: ReportsService;
  /** Statement PDFs and XLSX, and report-pack archives, rendered off the event loop. */
  renderer: ReportRenderer;
  rates: ExchangeRatesService;
  /** Lets a new client entity start from a chart template in its own transaction. */
  charts: ChartSeeder;
}

export function createLedgerServices(scopes: TenantScopes, renderer: ReportRenderer): LedgerServices {
  return {
    renderer,
    accounts: new AccountsService(scopes),
    journal: new JournalService(scopes),
    periods: new PeriodsService(scopes),
    adjustments: new AdjustmentsService(scopes),
    reports: new ReportsService(scopes),
    rates: new ExchangeRatesService(scopes),
    charts: {
      has: (templateId) => chartTemplates.has(templateId),
      async apply(db, entityId, templateId) {
        const template = chartTemplates.get(templateId);
        if (template) await applyChartTemplate(db, entityId, template);
      },
    },
  };
}
