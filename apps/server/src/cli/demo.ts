import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { insertUser } from '../identity/users.store.ts';
import type { Config } from '../platform/config.ts';
import { buildHttpApp } from '../platform/http/http-app.ts';
import type { App } from '../platform/http/http-types.ts';
import { formatId, newUuid } from '../platform/ids.ts';
import { openPlatform, type Platform } from '../platform/platform.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';

/**
 * `countinghouse demo`: a demo firm with three client entities on the US chart, a year of
 * everyday bookkeeping (sales, payroll, rent, utilities, card spend, a loan and its
 * interest), euro sales for one client at recorded rates, a year-end depreciation entry taken
 * through sign-off (prepared by the owner, approved by a manager), January to November closed,
 * and the sign-in instructions printed. Everything goes through the public API in-process, so
 * the demo books obey every rule real books do.
 */
export interface DemoFirm {
  tenantId: string;
  ownerEmail: string;
  ownerPassword: string;
  managerEmail: string;
  entities: Array<{ id: string; name: string }>;
}

const demoYear = 2025;
const clients = [
  { name: 'Maple Street Bakery LLC', entityType: 's_corporation', scale: 1 },
  { name: 'Harbor Dental PLLC', entityType: 'partnership', scale: 3 },
  { name: 'Northwind Consulting Inc.', entityType: 'c_corporation', scale: 2 },
] as const;

type Auth = { authorization: string };

async function call(app: App, method: 'GET' | 'POST' | 'PUT', url: string, auth: Auth, payload?: object) {
  for (let attempt = 0; ; attempt++) {
    const response = await app.inject({
      method,
      url,
      headers: { ...auth, ...(method === 'POST' ? { 'idempotency-key': `demo-${newUuid()}` } : {}) },
      ...(payload === undefined ? {} : { payload }),
    });
    // The demo firm keeps its tier's request rate: wait out a 429 rather than bend the plan.
    if (response.statusCode === 429 && attempt < 20) {
      await new Promise((resolve) => setTimeout(resolve, 1_000 * Number(response.headers['retry-after'] ?? 1)));
      continue;
    }
    if (response.statusCode >= 300)
      throw new Error(`demo: ${method} ${url} answered ${response.statusCode}: ${response.body}`);
    return response.json<Record<string, unknown>>();
  }
}

/** A deterministic pseudo-random amount, so every demo has the same shape but not round figures. */
function amount(seed: number, base: number, spread: number): number {
  const noise = Math.abs(Math.sin(seed * 12.9898) * 43_758.5453) % 1;
  return Math.round(base + noise * spread);
}

function day(month: number, dayOfMonth: number): string {
  return `${demoYear}-${String(month).padStart(2, '0')}-${String(dayOfMonth).padStart(2, '0')}`;
}

type DemoLine = {
  accountId: string;
  side: 'debit' | 'credit';
  amountMinor: number;
  currency: string;
  exponent: number;
};

function pair(accounts: Record<string, string>, debit: string, credit: string, minor: number, currency = 'USD') {
  const line = (number: string, side: DemoLine['side']): DemoLine => ({
    accountId: accounts[number] ?? '',
    side,
    amountMinor: minor,
    currency,
    exponent: 2,
  });
  return [line(debit, 'debit'), line(credit, 'credit')];
}

/** A year of entries for one client, `scale` setting its size. */
function yearOfEntries(accounts: Record<string, string>, scale: number, euroSales: boolean) {
  const entries: Array<{ date: string; memo: string; lines: DemoLine[] }> = [];
  const add = (date: string, memo: string, debit: string, credit: string, minor: number) =>
    entries.push({ date, memo, lines: pair(accounts, debit, credit, minor) });
  add(day(1, 2), 'Owner capital contribution', '1010', '3000', 50_000_00 * scale);
  add(day(1, 3), 'Equipment purchase', '1500', '1010', 24_000_00 * scale);
  add(day(1, 5), 'Bank loan drawn', '1010', '2700', 30_000_00 * scale);
  for (let month = 1; month <= 12; month++) {
    const seed = month * 31 + scale;
    for (let week = 0; week < 4; week++) {
      add(
        day(month, 3 + week * 7),
        `Week ${week + 1} sales`,
        '1100',
        '4000',
        amount(seed + week, 6_000_00, 3_000_00) * scale,
      );
      add(
        day(month, 5 + week * 7),
        'Customer receipts',
        '1010',
        '1100',
        amount(seed + week, 5_500_00, 2_500_00) * scale,
      );
    }
    add(day(month, 1), 'Rent', '6300', '1010', 3_200_00 * scale);
    add(day(month, 15), 'Payroll, first half', '6110', '1010', amount(seed, 9_000_00, 800_00) * scale);
    add(day(month, 28), 'Payroll, second half', '6110', '1010', amount(seed + 1, 9_000_00, 800_00) * scale);
    add(day(month, 28), 'Employer payroll taxes', '6120', '2210', amount(seed + 2, 1_350_00, 150_00) * scale);
    add(day(month, 10), 'Payroll taxes remitted', '2210', '1010', amount(seed + 3, 1_300_00, 100_00) * scale);
    add(day(month, 12), 'Utilities', '6400', '2000', amount(seed, 420_00, 180_00) * scale);
    add(day(month, 20), 'Suppliers paid', '2000', '1010', amount(seed, 400_00, 150_00) * scale);
    add(day(month, 18), 'Office supplies on the card', '6500', '2100', amount(seed, 150_00, 120_00));
    add(day(month, 25), 'Card statement paid', '2100', '1010', amount(seed, 140_00, 110_00));
    add(day(month, 27), 'Loan interest', '7000', '1010', 125_00 * scale);
    if (euroSales && month % 3 === 0) {
      entries.push({
        date: day(month, 16),
        memo: 'Consulting for a client in Lyon',
        lines: pair(accounts, '1020', '4100', amount(seed, 8_000_00, 2_000_00), 'EUR'),
      });
    }
  }
  return entries;
}

async function demoClient(app: App, owner: Auth, manager: Auth, client: (typeof clients)[number], euroSales: boolean) {
  const entity = await call(app, 'POST', '/v1/entities', owner, {
    name: client.name,
    legalName: client.name,
    entityType: client.entityType,
    fiscalYearEnd: '12-31',
    chartTemplate: 'us-small-business',
  });
  const entityId = String(entity.id);
  const base = `/v1/entities/${entityId}`;
  const chart = (await call(app, 'GET', `${base}/accounts?limit=1000`, owner)) as {
    items: Array<{ id: string; number: string }>;
  };
  const accounts = Object.fromEntries(chart.items.map((account) => [account.number, account.id]));
  if (euroSales) {
    const rates = [1.0312, 1.0365, 1.0821, 1.1307].map((rate, index) => ({
      currency: 'EUR',
      date: day(index * 3 + 1, 1),
      rate: String(rate),
    }));
    await call(app, 'PUT', `${base}/exchange-rates`, owner, { rates, source: 'import' });
  }
  await call(app, 'POST', `${base}/journal-entries/batch`, owner, {
    entries: yearOfEntries(accounts, client.scale, euroSales),
  });
  const depreciation = 4_800_00 * client.scale;
  const adjustment = await call(app, 'POST', `${base}/adjustments`, owner, {
    date: day(12, 31),
    kind: 'adjusting',
    memo: 'Year-end depreciation, straight line over five years',
    lines: pair(accounts, '6800', '1590', depreciation),
    documents: [{ name: 'Depreciation schedule 2025', url: 'https://example.com/demo/depreciation-2025.xlsx' }],
    comment: 'Five-year straight line on the January equipment purchase.',
  });
  const adjustmentId = String(adjustment.id);
  await call(app, 'POST', `${base}/adjustments/${adjustmentId}/submit`, owner, {});
  await call(app, 'POST', `${base}/adjustments/${adjustmentId}/approve`, manager, {
    comment: 'Agrees to the schedule.',
  });
  await call(app, 'POST', `${base}/adjustments/${adjustmentId}/post`, owner, {});
  for (let month = 1; month <= 11; month++) {
    await call(app, 'POST', `${base}/periods/${demoYear}-${String(month).padStart(2, '0')}/close`, owner, {});
  }
  return { id: entityId, name: client.name };
}

/** Seeds the demo firm through `app`; the platform is used only to onboard it and add its manager. */
export async function seedDemo(app: App, platform: Platform): Promise<DemoFirm> {
  const suffix = randomBytes(3).toString('hex');
  const ownerEmail = `owner-${suffix}@demo.countinghouse.test`;
  const managerEmail = `manager-${suffix}@demo.countinghouse.test`;
  const ownerPassword = `demo-${randomBytes(9).toString('base64url')}`;
  const tenant = await platform.tenancy.createTenant({
    name: `Demo CPA ${suffix}`,
    tier: 'starter',
    admin: { email: ownerEmail, password: ownerPassword },
  });
  const tenantId = formatId('tenant', tenant.id);
  const signedIn = await call(
    app,
    'POST',
    '/v1/auth/token',
    { authorization: '' },
    {
      tenantId,
      email: ownerEmail,
      password: ownerPassword,
    },
  );
  const owner = { authorization: `Bearer ${String(signedIn.access_token)}` };
  // The approver: a manager without a password (the demo signs them in with a token), since
  // the owner who prepares an adjustment may not approve it.
  const managerId = newUuid();
  await platform.scopes.run(tenantContextOf(tenant), (db) =>
    insertUser(db, { id: managerId, tenantId: tenant.id, email: managerEmail, passwordHash: '!', roles: ['manager'] }),
  );
  const managerToken = await platform.tokens.issue({
    userId: managerId,
    tenantId: tenant.id,
    tier: tenant.tier,
    roles: ['manager'],
  });
  const manager = { authorization: `Bearer ${managerToken.accessToken}` };
  const entities = [];
  for (const [index, client] of clients.entries()) {
    entities.push(await demoClient(app, owner, manager, client, index === 2));
  }
  return { tenantId, ownerEmail, ownerPassword, managerEmail, entities };
}

export function demoInstructions(firm: DemoFirm, baseUrl: string): string {
  return [
    `Demo firm ready: ${firm.tenantId}`,
    ...firm.entities.map((entity) => `  client entity ${entity.id}  ${entity.name}`),
    '',
    'Start the server (npm start) and sign in as the owner:',
    `  curl -s -X POST ${baseUrl}/v1/auth/token -H 'content-type: application/json' \\`,
    `    -d '{"tenantId":"${firm.tenantId}","email":"${firm.ownerEmail}","password":"${firm.ownerPassword}"}'`,
    'then, with the access token in $TOKEN, for example:',
    `  curl -s "${baseUrl}/v1/entities/${firm.entities[0]?.id ?? ''}/reports/trial-balance?asOf=${demoYear}-12-31" -H "authorization: Bearer $TOKEN"`,
    `  curl -s "${baseUrl}/v1/entities/${firm.entities[2]?.id ?? ''}/reports/balance-sheet?asOf=${demoYear}-12-31&view=base&format=pdf" -H "authorization: Bearer $TOKEN" -o balance-sheet.pdf`,
    `Periods January to November ${demoYear} are closed; December is open.`,
    '',
  ].join('\n');
}

/** The command: opens the platform on the configured database, seeds, prints, closes. */
export async function runDemo(config: Config, log: Logger, write: (text: string) => void): Promise<void> {
  const platform = await openPlatform(config, log);
  try {
    const app = await buildHttpApp(platform, log);
    try {
      const firm = await seedDemo(app, platform);
      if (platform.generatedOperatorKey) {
        write(
          `Operator key (shown once; stored with mode 0600 in ${config.home}/operator.key):\n  ${platform.generatedOperatorKey}\n\n`,
        );
      }
      write(demoInstructions(firm, `http://${config.host}:${config.port}`));
    } finally {
      await app.close();
    }
  } finally {
    await platform.close();
  }
}
