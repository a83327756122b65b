import { AppError } from '../platform/errors.ts';

/**
 * Money is integer minor units (`bigint`) with an ISO 4217 currency and its exponent. No
 * floating point touches an amount: JSON carries an integer up to 2^53 or a decimal-digit
 * string beyond it, and formatting to a decimal string is done on the digits.
 */

/** ISO 4217 exponents (minor unit digits) of the currencies this ledger accepts. */
export const currencyExponents: Readonly<Record<string, number>> = {
  AED: 2,
  ARS: 2,
  AUD: 2,
  BGN: 2,
  BHD: 3,
  BRL: 2,
  CAD: 2,
  CHF: 2,
  CLP: 0,
  CNY: 2,
  COP: 2,
  CZK: 2,
  DKK: 2,
  EGP: 2,
  EUR: 2,
  GBP: 2,
  HKD: 2,
  HUF: 2,
  IDR: 2,
  ILS: 2,
  INR: 2,
  ISK: 0,
  JOD: 3,
  JPY: 0,
  KRW: 0,
  KWD: 3,
  MXN: 2,
  MYR: 2,
  NOK: 2,
  NZD: 2,
  OMR: 3,
  PEN: 2,
  PHP: 2,
  PKR: 2,
  PLN: 2,
  QAR: 2,
  RON: 2,
  SAR: 2,
  SEK: 2,
  SGD: 2,
  THB: 2,
  TND: 3,
  TRY: 2,
  TWD: 2,
  UAH: 2,
  USD: 2,
  UYU: 2,
  VND: 0,
  ZAR: 2,
  CLF: 4,
  UYW: 4,
};

export const bigintMax = 9_223_372_036_854_775_807n;
const safeIntegerMax = BigInt(Number.MAX_SAFE_INTEGER);

/** A JSON amount: an integer (exact only up to 2^53) or a string of decimal digits. */
export type JsonAmount = number | string;

/**
 * Parses a positive amount of minor units.
 * Errors: LEDGER_AMOUNT_OUT_OF_RANGE (zero, negative, fractional, unsafe number, beyond bigint).
 */
export function parsePositiveAmount(amount: JsonAmount, where: string): bigint {
  let value: bigint;
  if (typeof amount === 'number') {
    if (!Number.isSafeInteger(amount)) {
      throw new AppError(
        'LEDGER_AMOUNT_OUT_OF_RANGE',
        `${where}: ${amount} is not an exact integer; send it as a string`,
      );
    }
    value = BigInt(amount);
  } else {
    if (!/^[0-9]{1,19}$/.test(amount)) {
      throw new AppError('LEDGER_AMOUNT_OUT_OF_RANGE', `${where}: "${amount}" is not a string of at most 19 digits`);
    }
    value = BigInt(amount);
  }
  if (value <= 0n || value > bigintMax) {
    throw new AppError('LEDGER_AMOUNT_OUT_OF_RANGE', `${where}: ${value} is outside 1..2^63-1`);
  }
  return value;
}

/** Renders an amount for JSON: an integer while exact, a string beyond 2^53. */
export function jsonAmount(value: bigint): JsonAmount {
  return value <= safeIntegerMax && value >= -safeIntegerMax ? Number(value) : value.toString();
}

/** Formats minor units as a decimal string with the currency's exponent (`-1234.50`). */
export function formatDecimal(value: bigint, exponent: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(exponent + 1, '0');
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const fraction = exponent === 0 ? '' : `.${digits.slice(-exponent)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/**
 * Checks a currency and the exponent a client sent for it.
 * Errors: LEDGER_CURRENCY_UNKNOWN, LEDGER_CURRENCY_EXPONENT_MISMATCH.
 */
export function checkCurrency(currency: string, exponent: number | undefined, where: string): number {
  const expected = currencyExponents[currency];
  if (expected === undefined) throw new AppError('LEDGER_CURRENCY_UNKNOWN', `${where}: ${currency}`);
  if (exponent !== undefined && exponent !== expected) {
    throw new AppError(
      'LEDGER_CURRENCY_EXPONENT_MISMATCH',
      `${where}: ${currency} has exponent ${expected}, not ${exponent}`,
    );
  }
  return expected;
}

export function exponentOf(currency: string): number {
  return currencyExponents[currency] ?? 2;
}

/** Exchange rates: base units per unit, a positive decimal with up to 12 fractional digits. */
export const exchangeRatePattern = /^(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$/;

/**
 * Parses a rate to an exact fraction. Errors: LEDGER_EXCHANGE_RATE_INVALID (malformed or zero).
 */
export function parseRate(rate: string, where: string): { numerator: bigint; scale: number } {
  if (!exchangeRatePattern.test(rate)) {
    throw new AppError('LEDGER_EXCHANGE_RATE_INVALID', `${where}: "${rate}" is not a positive decimal rate`);
  }
  const [whole = '0', fraction = ''] = rate.split('.');
  const numerator = BigInt(whole + fraction);
  if (numerator === 0n) throw new AppError('LEDGER_EXCHANGE_RATE_INVALID', `${where}: a rate must be above zero`);
  return { numerator, scale: fraction.length };
}

/** The canonical text of a rate (no trailing zeros), as PostgreSQL's numeric compares it. */
export function normalizeRate(rate: string): string {
  if (!rate.includes('.')) return rate;
  const trimmed = rate.replace(/0+$/, '');
  return trimmed.endsWith('.') ? trimmed.slice(0, -1) : trimmed;
}

/**
 * An amount in base minor units: amount x rate x 10^(baseExponent - exponent), rounded half
 * away from zero (the rounding PostgreSQL's round(numeric) applies, which the database checks).
 */
export function toBaseMinor(amountMinor: bigint, rate: string, exponent: number, baseExponent: number): bigint {
  const { numerator, scale } = parseRate(rate, 'rate');
  const shift = baseExponent - exponent;
  const top = amountMinor * numerator * 10n ** BigInt(Math.max(0, shift));
  const bottom = 10n ** BigInt(scale + Math.max(0, -shift));
  const quotient = top / bottom;
  const remainder = top % bottom;
  const roundUp = remainder * 2n >= bottom;
  return amountMinor >= 0n ? quotient + (roundUp ? 1n : 0n) : quotient - (-remainder * 2n >= bottom ? 1n : 0n);
}
