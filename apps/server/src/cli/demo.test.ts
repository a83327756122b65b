import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack, unthrottle } from '../../test/harness.ts';
import { type DemoFirm, demoInstructions, seedDemo } from './demo.ts';

/**
 * `countinghouse demo` seeds a firm a newcomer can sign in to: three client entities with a
 * year of books that balance and tie to the journal in every report, euro activity translated
 * at recorded rates, a depreciation adjustment posted through sign-off by a second person,
 * January to November closed, and printed instructions whose credentials work.
 */
let stack: TestStack;
let firm: DemoFirm;
let auth: { authorization: string };

beforeAll(async () => {
  stack = await startTestStack();
  firm = await seedDemo(stack.app, stack.platform);
  // The checks below read many reports; the starter plan's rate is not what they test.
  await unthrottle(stack.app, firm.tenantId);
  const signedIn = await stack.app.inject({
    method: 'POST',
    url: '/v1/auth/token',
    payload: { tenantId: firm.tenantId, email: firm.ownerEmail, password: firm.ownerPassword },
  });
  expect(signedIn.statusCode).toBe(200);
  auth = { authorization: `Bearer ${signedIn.json<{ access_token: string }>().access_token}` };
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

async function get(url: string) {
  const response = await stack.app.inject({ method: 'GET', url, headers: auth });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<Record<string, unknown>>();
}

describe('countinghouse demo', () => {
  it('prints sign-in instructions with the firm, its owner and its clients', () => {
    const text = demoInstructions(firm, 'http://127.0.0.1:4000');
    expect(text).toContain(firm.tenantId);
    expect(text).toContain(firm.ownerPassword);
    for (const entity of firm.entities) expect(text).toContain(entity.id);
  });

  it('keeps a year of books for each client that balance and tie to the journal', async () => {
    expect(firm.entities.map((entity) => entity.name)).toHaveLength(3);
    for (const entity of firm.entities) {
      const base = `/v1/entities/${entity.id}/reports`;
      for (const view of ['transaction', 'base']) {
        const trial = await get(`${base}/trial-balance?asOf=2025-12-31&view=${view}&verify=true`);
        expect(trial.checks).toEqual({ balanced: true, tiesToJournal: true });
      }
      const sheet = await get(`${base}/balance-sheet?asOf=2025-12-31&verify=true`);
      expect(sheet.checks).toEqual({ balanced: true, tiesToJournal: true });
      const entries = await get(`/v1/entities/${entity.id}/journal-entries?limit=1000`);
      expect((entries.items as unknown[]).length).toBeGreaterThan(200);
    }
    const euro = await get(`/v1/entities/${firm.entities[2]?.id}/reports/trial-balance?asOf=2025-12-31&view=base`);
    expect((euro.translation as { rates: unknown[] }).rates).toEqual([
      { currency: 'EUR', date: '2025-10-01', rate: '1.1307' },
    ]);
  });

  it('posted the year-end depreciation through sign-off by someone other than its preparer', async () => {
    const entityId = firm.entities[0]?.id;
    const list = await get(`/v1/entities/${entityId}/adjustments`);
    const [adjustment] = list.items as Array<{ status: string; preparedBy: string; approvedBy: string }>;
    expect(adjustment?.status).toBe('posted');
    expect(adjustment?.approvedBy).not.toBe(adjustment?.preparedBy);
  });

  it('closed January to November, so a posting into November is refused', async () => {
    const entityId = firm.entities[0]?.id;
    const chart = await get(`/v1/entities/${entityId}/accounts?limit=1000`);
    const accounts = Object.fromEntries(
      (chart.items as Array<{ id: string; number: string }>).map((account) => [account.number, account.id]),
    );
    const refused = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${entityId}/journal-entries`,
      headers: { ...auth, 'idempotency-key': 'demo-late' },
      payload: {
        date: '2025-11-20',
        lines: [
          { accountId: accounts['6500'], side: 'debit', amountMinor: 100, currency: 'USD', exponent: 2 },
          { accountId: accounts['1010'], side: 'credit', amountMinor: 100, currency: 'USD', exponent: 2 },
        ],
      },
    });
    expect(refused.json()).toMatchObject({ code: 'LEDGER_PERIOD_CLOSED' });
    const december = await get(`/v1/entities/${entityId}/periods/2025-12`);
    expect(december).toMatchObject({ period: { status: 'open' } });
  });
});
