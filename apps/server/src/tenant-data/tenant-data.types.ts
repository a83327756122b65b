import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import type { ExportManifest } from './export-archive.ts';

/** Plain data of exports, offboarding and tier changes (control plane). */
export type ExportStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface TenantExport {
  id: string;
  tenantId: string;
  status: ExportStatus;
  jobId: string | null;
  fileName: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  manifest: ExportManifest | null;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface LegalHold {
  reason: string;
  setAt: Date;
}

/** The lifecycle columns of a tenant's registry row. */
export interface TenantLifecycle {
  tenantId: string;
  status: string;
  tier: string;
  placement: TenantPlacement;
  legalHold: LegalHold | null;
  offboardedAt: Date | null;
  purgeAfter: Date | null;
  purgedAt: Date | null;
}

export type TierChangeStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** Where a move stands; the order is the order of the work. */
export const movePhases = [
  'queued',
  'preparing',
  'copying',
  'catching_up',
  'verifying',
  'frozen',
  'switching',
  'purging_source',
  'done',
  'rolling_back',
  'rolled_back',
] as const;
export type MovePhase = (typeof movePhases)[number];

export interface TierChange {
  id: string;
  tenantId: string;
  fromTier: string;
  toTier: string;
  sourcePlacement: TenantPlacement;
  targetPlacement: TenantPlacement | null;
  status: TierChangeStatus;
  phase: MovePhase;
  rowsTotal: number;
  rowsCopied: number;
  jobId: string | null;
  result: Record<string, unknown> | null;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}
