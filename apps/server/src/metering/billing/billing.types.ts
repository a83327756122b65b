import type { TenantPlacement } from '../../platform/database/tenant-scope.ts';

/** A tenant's measured usage in one calendar month (UTC), from the rollups. */
export interface MonthUsage {
  requests: bigint;
  computeUs: bigint;
  databaseUs: bigint;
  jobUs: bigint;
  /** Sum over the month's days of the day's largest storage sample. */
  storageByteDays: bigint;
  usersMax: bigint;
  entitiesMax: bigint;
}

export const zeroUsage: MonthUsage = {
  requests: 0n,
  computeUs: 0n,
  databaseUs: 0n,
  jobUs: 0n,
  storageByteDays: 0n,
  usersMax: 0n,
  entitiesMax: 0n,
};

/** A calendar month in UTC. */
export interface BillingMonth {
  /** `YYYY-MM` */
  label: string;
  start: Date;
  end: Date;
  days: number;
}

export interface InvoiceBand {
  upTo: number | null;
  unitPriceMicros: number;
  /** Units charged in this band, as an exact decimal string. */
  quantity: string;
}

export interface InvoiceLine {
  code: string;
  description: string;
  /** Units measured, as an exact decimal string (GB-months have fractions). */
  quantity: string;
  included: number;
  bands: InvoiceBand[];
  amountMinor: number;
}

export interface Invoice {
  id: string;
  tenantId: string;
  tenantName: string;
  tier: string;
  month: string;
  currency: string;
  lines: InvoiceLine[];
  totalMinor: number;
  /** Each line rounded half-even to the minor unit; the total is the sum of the lines. */
  rounding: 'half-even-per-line';
  /** sha256 of the invoice's content: equal inputs give an equal hash. */
  contentHash: string;
}

export interface CostLine {
  pool: string;
  kind: 'dedicated' | 'shared' | 'tagged';
  amountMinor: number;
}

export interface TenantCost {
  tenantId: string;
  tenantName: string;
  tier: string;
  placement: TenantPlacement['model'];
  lines: CostLine[];
  totalMinor: number;
}

export interface CostPool {
  name: string;
  kind: 'dedicated' | 'shared' | 'tagged';
  driver: string | null;
  totalMinor: number;
  attributedMinor: number;
  /** Shared cost no tenant consumed (driver zero for everyone): platform overhead. */
  unattributedMinor: number;
}

export interface CostReport {
  month: string;
  currency: string;
  source: 'cost-model' | 'cur-import';
  importId: string | null;
  pools: CostPool[];
  tenants: TenantCost[];
  totalMinor: number;
  attributedMinor: number;
  unattributedMinor: number;
  rounding: 'half-even-per-pool, largest-remainder-per-tenant';
  /** Anything the operator should know (for example CUR tags naming no known tenant). */
  notes: string[];
}
