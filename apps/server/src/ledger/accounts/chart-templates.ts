import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert } from '../../platform/assert.ts';
import {
  type AccountType,
  accountTypes,
  type Side,
  type SystemRole,
  systemRoles,
  type TaxLines,
  taxForms,
} from '../ledger.types.ts';

/**
 * Chart-of-accounts templates are data files (`ledger/templates/*.json`), checked when
 * loaded: types and normal balances known, parents listed before their children, every tax
 * line labelled for its form.
 */
export interface TemplateAccount {
  number: string;
  name: string;
  type: AccountType;
  normalBalance: Side;
  parent?: string;
  systemRole?: SystemRole;
  taxLines: TaxLines;
}

export interface ChartTemplate {
  id: string;
  name: string;
  description: string;
  forms: Record<string, string>;
  taxLineLabels: Record<string, Record<string, string>>;
  accounts: TemplateAccount[];
}

const templatesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'templates');

function checkTemplate(template: ChartTemplate): ChartTemplate {
  const numbers = new Set<string>();
  for (const account of template.accounts) {
    assert(!numbers.has(account.number), `template ${template.id}: account ${account.number} twice`);
    assert(accountTypes.includes(account.type), `template ${template.id}: ${account.number} type`);
    assert(['debit', 'credit'].includes(account.normalBalance), `template ${template.id}: ${account.number} side`);
    assert(account.parent === undefined || numbers.has(account.parent), `template ${template.id}: parent order`);
    assert(
      account.systemRole === undefined || systemRoles.includes(account.systemRole),
      `template ${template.id}: ${account.number} role`,
    );
    for (const [form, line] of Object.entries(account.taxLines)) {
      assert((taxForms as readonly string[]).includes(form), `template ${template.id}: unknown form ${form}`);
      assert(template.taxLineLabels[form]?.[line ?? ''] !== undefined, `template ${template.id}: ${form} ${line}`);
    }
    numbers.add(account.number);
  }
  return template;
}

function loadTemplates(): Map<string, ChartTemplate> {
  const templates = new Map<string, ChartTemplate>();
  for (const file of fs.readdirSync(templatesDir).filter((name) => name.endsWith('.json'))) {
    const template = JSON.parse(fs.readFileSync(path.join(templatesDir, file), 'utf8')) as ChartTemplate;
    templates.set(template.id, checkTemplate(template));
  }
  return templates;
}

export const chartTemplates: ReadonlyMap<string, ChartTemplate> = loadTemplates();

/** The label of a tax line across all templates (they share the IRS form line numbers). */
export function taxLineLabel(form: string, line: string): string {
  for (const template of chartTemplates.values()) {
    const label = template.taxLineLabels[form]?.[line];
    if (label !== undefined) return label;
  }
  return line;
}
