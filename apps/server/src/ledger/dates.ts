import { AppError } from '../platform/errors.ts';
import { ledgerLimits } from './ledger.limits.ts';

/**
 * Calendar dates as `YYYY-MM-DD` strings, compared as text; months as the date of their
 * first day. No time zones: an entry's date is the accounting date the firm gives it.
 */
const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Errors: LEDGER_DATE_INVALID. */
export function checkDate(date: string, where: string): string {
  const match = datePattern.exec(date);
  const parsed = match ? new Date(`${date}T00:00:00Z`) : null;
  if (!parsed || Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== date) {
    throw new AppError('LEDGER_DATE_INVALID', `${where}: "${date}"`);
  }
  if (date < ledgerLimits.dateMin || date > ledgerLimits.dateMax) {
    throw new AppError(
      'LEDGER_DATE_INVALID',
      `${where}: ${date} is outside ${ledgerLimits.dateMin}..${ledgerLimits.dateMax}`,
    );
  }
  return date;
}

export function monthOf(date: string): string {
  return `${date.slice(0, 7)}-01`;
}

export function addMonths(month: string, count: number): string {
  const year = Number(month.slice(0, 4));
  const index = year * 12 + Number(month.slice(5, 7)) - 1 + count;
  return `${String(Math.floor(index / 12)).padStart(4, '0')}-${String((index % 12) + 1).padStart(2, '0')}-01`;
}

export function lastDayOfMonth(month: string): string {
  const next = new Date(`${addMonths(month, 1)}T00:00:00Z`);
  return new Date(next.getTime() - 86_400_000).toISOString().slice(0, 10);
}

export function addDays(date: string, days: number): string {
  return new Date(new Date(`${date}T00:00:00Z`).getTime() + days * 86_400_000).toISOString().slice(0, 10);
}

export function toDateString(value: Date | string): string {
  return typeof value === 'string' ? value.slice(0, 10) : value.toISOString().slice(0, 10);
}

/**
 * The fiscal year a month belongs to, named by the calendar year in which it ends, and the
 * month's number within it. A fiscal year ends with the month of `fiscalYearEnd` (MM-DD).
 */
export function fiscalPosition(month: string, fiscalYearEnd: string): { fiscalYear: number; periodNumber: number } {
  const endMonth = Number(fiscalYearEnd.slice(0, 2));
  const year = Number(month.slice(0, 4));
  const monthNumber = Number(month.slice(5, 7));
  const fiscalYear = monthNumber > endMonth ? year + 1 : year;
  const periodNumber = ((monthNumber - endMonth - 1 + 24) % 12) + 1;
  return { fiscalYear, periodNumber };
}

/** The first month of a fiscal year. */
export function fiscalYearStart(fiscalYear: number, fiscalYearEnd: string): string {
  const endMonth = `${String(fiscalYear).padStart(4, '0')}-${fiscalYearEnd.slice(0, 2)}-01`;
  return addMonths(endMonth, -11);
}
