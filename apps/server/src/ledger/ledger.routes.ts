import type { App } from '../platform/http/http-types.ts';
import { accountsRoutes } from './accounts/accounts.routes.ts';
import { journalRoutes } from './journal/journal.routes.ts';
import { AccountSchema, EntrySchema } from './ledger.http.ts';
import type { LedgerServices } from './ledger.services.ts';
import { periodsRoutes } from './periods/periods.routes.ts';
import { exchangeRatesRoutes } from './rates/exchange-rates.routes.ts';
import { reportsRoutes } from './reports/reports.routes.ts';
import { adjustmentsRoutes } from './signoff/adjustments.routes.ts';

/** The accounting core over HTTP: one encapsulated plugin registering each sub-area's routes. */
export async function ledgerRoutes(app: App, options: { ledger: LedgerServices }): Promise<void> {
  const { ledger } = options;
  app.addSchema(AccountSchema);
  app.addSchema(EntrySchema);
  app.addHook('onRequest', app.authenticateTenant);
  await app.register(accountsRoutes, { accounts: ledger.accounts });
  await app.register(journalRoutes, { journal: ledger.journal });
  await app.register(periodsRoutes, { periods: ledger.periods });
  await app.register(adjustmentsRoutes, { adjustments: ledger.adjustments });
  await app.register(reportsRoutes, { reports: ledger.reports, renderer: ledger.renderer });
  await app.register(exchangeRatesRoutes, { rates: ledger.rates });
}
