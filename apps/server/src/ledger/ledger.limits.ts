import { assert } from '../platform/assert.ts';

/** Named bounds of the accounting core, with their relations checked at load. */
export const ledgerLimits = {
  linesPerEntryMax: 500,
  entriesPerBatchMax: 1_000,
  /** A batch of entries is bounded by lines too, so one request stays one sane transaction. */
  linesPerBatchMax: 10_000,
  memoLengthMax: 500,
  accountsPerEntityMax: 5_000,
  accountDepthMax: 8,
  balanceShardsMax: 64,
  balanceShardsDefault: 1,
  pageSizeDefault: 100,
  pageSizeMax: 1_000,
  documentsPerAdjustmentMax: 20,
  commentLengthMax: 4_000,
  reasonLengthMax: 1_000,
  closeTasksPerPeriodMax: 100,
  /** Entities whose base currency and rounding account a process remembers (journal/base-currency.ts). */
  rememberedEntitiesMax: 10_000,
  /** Exchange rates recorded in one request. */
  ratesPerRequestMax: 1_000,
  /** Exchange rates in one CSV import (a year of daily rates for about 25 currencies). */
  ratesPerImportMax: 10_000,
  /** A rate file in bytes, and one of its rows: a rate row is some 30 bytes. */
  ratesImportBytesMax: 1024 * 1024,
  rateCsvRecordBytesMax: 1_024,
  /** Bad rows a refused import lists; the detail counts the rest. */
  rateImportProblemsMax: 100,
  /** Earliest and latest dates the journal accepts. */
  dateMin: '1900-01-01',
  dateMax: '2999-12-31',
} as const;

assert(ledgerLimits.linesPerBatchMax >= ledgerLimits.linesPerEntryMax, 'a batch holds at least one full entry');
assert(ledgerLimits.balanceShardsDefault <= ledgerLimits.balanceShardsMax, 'default shards within the maximum');
assert(ledgerLimits.ratesPerImportMax >= ledgerLimits.ratesPerRequestMax, 'a file holds at least a request of rates');
assert(
  ledgerLimits.ratesImportBytesMax >= ledgerLimits.ratesPerImportMax * 32,
  'the byte bound admits a full file of plain rate rows',
);
assert(ledgerLimits.pageSizeDefault <= ledgerLimits.pageSizeMax, 'default page within the maximum');
