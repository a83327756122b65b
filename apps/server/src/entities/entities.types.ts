import type { TenantDb } from '../platform/database/tenant-scope.ts';

export const entityTypes = [
  'sole_proprietorship',
  'partnership',
  's_corporation',
  'c_corporation',
  'nonprofit',
] as const;
export type EntityType = (typeof entityTypes)[number];
export type EntityStatus = 'active' | 'archived';

/** A client entity: a company whose books the firm keeps. Ids are uuids. */
export interface Entity {
  id: string;
  name: string;
  legalName: string | null;
  /** Last four digits of the taxpayer id; the full id is only ever stored sealed. */
  taxpayerIdLast4: string | null;
  entityType: EntityType | null;
  baseCurrency: string;
  fiscalYearEnd: string;
  status: EntityStatus;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewEntity {
  name: string;
  legalName?: string | undefined;
  /** EIN (12-3456789) or SSN/ITIN (123-45-6789); sealed at rest, shown masked. */
  taxpayerId?: string | undefined;
  /** A chart-of-accounts template to create the entity's chart from; empty when absent. */
  chartTemplate?: string | undefined;
  entityType?: EntityType | undefined;
  baseCurrency?: string | undefined;
  fiscalYearEnd?: string | undefined;
}

export interface EntityPage {
  items: Entity[];
  /** The id after which the next page starts, or null on the last page. */
  nextAfterId: string | null;
}

export interface EntityChanges {
  name?: string | undefined;
  legalName?: string | null | undefined;
  taxpayerId?: string | null | undefined;
  status?: EntityStatus | undefined;
}

/** Seeds a new entity's chart of accounts; the ledger provides it (entities know no accounts). */
export interface ChartSeeder {
  has(templateId: string): boolean;
  apply(db: TenantDb, entityId: string, templateId: string): Promise<void>;
}
