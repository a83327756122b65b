import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { newUuid } from '../../platform/ids.ts';
import { addDays, lastDayOfMonth } from '../dates.ts';

/** The close checklist of one entity's period: template tasks that roll forward month by month. */
export interface CloseTask {
  id: string;
  month: string;
  position: number;
  title: string;
  assignee: string | null;
  dueOn: string | null;
  status: 'open' | 'done';
  signedOffBy: string | null;
  signedOffAt: Date | null;
}

/** The tasks a first checklist starts from; due dates are days after the month ends. */
export const defaultCloseTasks: ReadonlyArray<{ title: string; dueDaysAfterMonthEnd: number }> = [
  { title: 'Reconcile bank and credit card accounts', dueDaysAfterMonthEnd: 5 },
  { title: 'Review AR aging and the allowance for doubtful accounts', dueDaysAfterMonthEnd: 7 },
  { title: 'Review AP aging and accrue unbilled expenses', dueDaysAfterMonthEnd: 7 },
  { title: 'Post depreciation and amortisation', dueDaysAfterMonthEnd: 10 },
  { title: 'Reconcile payroll liabilities', dueDaysAfterMonthEnd: 10 },
  { title: 'Review the trial balance and sign off the close', dueDaysAfterMonthEnd: 12 },
];

interface TaskRow {
  id: string;
  month: string;
  position: number;
  title: string;
  assignee: string | null;
  due_on: string | null;
  status: CloseTask['status'];
  signed_off_by: string | null;
  signed_off_at: Date | null;
}

const taskColumns = `id, period_month::text as month, position, title, assignee, due_on::text as due_on, status,
  signed_off_by, signed_off_at`;

function fromRow(row: TaskRow): CloseTask {
  return {
    id: row.id,
    month: row.month,
    position: row.position,
    title: row.title,
    assignee: row.assignee,
    dueOn: row.due_on,
    status: row.status,
    signedOffBy: row.signed_off_by,
    signedOffAt: row.signed_off_at,
  };
}

export async function listTasks(db: TenantDb, entityId: string, month: string): Promise<CloseTask[]> {
  const { rows } = await db.query<TaskRow>(
    `select ${taskColumns} from close_tasks where entity_id = $1 and period_month = $2 order by position`,
    [entityId, month],
  );
  return rows.map(fromRow);
}

async function insertTasks(
  db: TenantDb,
  entityId: string,
  month: string,
  tasks: Array<{ title: string; assignee: string | null; dueOn: string | null }>,
): Promise<void> {
  await db.query(
    `insert into close_tasks (tenant_id, entity_id, id, period_month, position, title, assignee, due_on)
     select $1, $2, t.id, $3, t.position, t.title, t.assignee, t.due_on
       from unnest($4::uuid[], $5::smallint[], $6::text[], $7::uuid[], $8::date[]) as t(id, position, title, assignee, due_on)
     on conflict do nothing`,
    [
      db.tenantId,
      entityId,
      month,
      tasks.map(() => newUuid()),
      tasks.map((_, index) => index + 1),
      tasks.map((task) => task.title),
      tasks.map((task) => task.assignee),
      tasks.map((task) => task.dueOn),
    ],
  );
}

/**
 * The checklist of a month, created on first read: rolled forward from the latest earlier
 * month that has one (same tasks and assignees, due dates moved to this month, all open),
 * or else from the default tasks.
 */
export async function ensureChecklist(db: TenantDb, entityId: string, month: string): Promise<CloseTask[]> {
  const existing = await listTasks(db, entityId, month);
  if (existing.length > 0) return existing;
  await db.query(`select pg_advisory_xact_lock(hashtextextended('close-checklist:' || $1 || $2, 0))`, [
    entityId,
    month,
  ]);
  const { rows } = await db.query<{ month: string }>(
    `select max(period_month)::text as month from close_tasks where entity_id = $1 and period_month < $2`,
    [entityId, month],
  );
  const previousMonth = rows[0]?.month ?? null;
  const monthEnd = lastDayOfMonth(month);
  if (previousMonth === null) {
    const tasks = defaultCloseTasks.map((task) => ({
      title: task.title,
      assignee: null,
      dueOn: addDays(monthEnd, task.dueDaysAfterMonthEnd),
    }));
    await insertTasks(db, entityId, month, tasks);
  } else {
    const previousEnd = lastDayOfMonth(previousMonth);
    const previous = await listTasks(db, entityId, previousMonth);
    await insertTasks(
      db,
      entityId,
      month,
      previous.map((task) => ({
        title: task.title,
        assignee: task.assignee,
        dueOn: task.dueOn === null ? null : addDays(monthEnd, daysBetween(previousEnd, task.dueOn)),
      })),
    );
  }
  return await listTasks(db, entityId, month);
}

function daysBetween(from: string, to: string): number {
  return Math.round((new Date(`${to}T00:00:00Z`).getTime() - new Date(`${from}T00:00:00Z`).getTime()) / 86_400_000);
}

export async function addTask(
  db: TenantDb,
  entityId: string,
  month: string,
  task: { title: string; assignee: string | null; dueOn: string | null },
): Promise<CloseTask> {
  const { rows } = await db.query<TaskRow>(
    `insert into close_tasks (tenant_id, entity_id, id, period_month, position, title, assignee, due_on)
     select $1, $2, $3, $4, coalesce(max(position), 0) + 1, $5, $6, $7
       from close_tasks where entity_id = $2 and period_month = $4
     returning ${taskColumns}`,
    [db.tenantId, entityId, newUuid(), month, task.title, task.assignee, task.dueOn],
  );
  const row = rows[0];
  if (!row) throw new Error('close task insert returned no row');
  return fromRow(row);
}

export async function findTaskForUpdate(db: TenantDb, entityId: string, id: string): Promise<CloseTask | null> {
  const { rows } = await db.query<TaskRow>(
    `select ${taskColumns} from close_tasks where entity_id = $1 and id = $2 for update`,
    [entityId, id],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function updateTask(db: TenantDb, entityId: string, task: CloseTask): Promise<CloseTask> {
  const { rows } = await db.query<TaskRow>(
    `update close_tasks set title = $3, assignee = $4, due_on = $5, status = $6, signed_off_by = $7,
            signed_off_at = case when $6 = 'done' then coalesce(signed_off_at, now()) end
      where entity_id = $1 and id = $2 returning ${taskColumns}`,
    [entityId, task.id, task.title, task.assignee, task.dueOn, task.status, task.signedOffBy],
  );
  const row = rows[0];
  if (!row) throw new Error('close task vanished inside its own transaction');
  return fromRow(row);
}

export async function userExists(db: TenantDb, userId: string): Promise<boolean> {
  const { rows } = await db.query('select 1 from users where id = $1', [userId]);
  return rows.length === 1;
}
