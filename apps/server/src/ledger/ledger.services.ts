import type { TenantScopes } from '../platform/database/tenant-scope.ts';
import { AccountsService } from './accounts/accounts.service.ts';
import { JournalService } from './journal/journal.service.ts';

/** The accounting core's services, built once by the platform. */
export interface LedgerServices {
  accounts: AccountsService;
  journal: JournalService;
}

export function createLedgerServices(scopes: TenantScopes): LedgerServices {
  return { accounts: new AccountsService(scopes), journal: new JournalService(scopes) };
}
