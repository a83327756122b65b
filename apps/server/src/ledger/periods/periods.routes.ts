import { Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../../platform/ids.ts';
import { checkDate, lastDayOfMonth } from '../dates.ts';
import { DateSchema, EntityParams, pathId, renderEntry } from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import type { CloseTask } from './close-checklist.store.ts';
import { type Actor, type PeriodsService, parsePeriod } from './periods.service.ts';
import type { Period, PeriodEvent } from './periods.store.ts';

const PeriodParams = Type.Object({ entityId: Type.String({ maxLength: 100 }), period: Type.String({ maxLength: 20 }) });
const TaskParams = Type.Object({
  entityId: Type.String({ maxLength: 100 }),
  period: Type.String({ maxLength: 20 }),
  taskId: Type.String({ maxLength: 100 }),
});

const PeriodSchema = Type.Object(
  {
    period: Type.String({ description: 'YYYY-MM' }),
    fiscalYear: Type.Integer(),
    periodNumber: Type.Integer(),
    startsOn: Type.String(),
    endsOn: Type.String(),
    status: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
    closedBy: Type.Union([Type.String(), Type.Null()]),
    closedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Period' },
);

const TaskSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('closeTask') }),
    period: Type.String(),
    position: Type.Integer(),
    title: Type.String(),
    assigneeId: Type.Union([Type.String(), Type.Null()]),
    dueOn: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal('open'), Type.Literal('done')]),
    signedOffBy: Type.Union([Type.String(), Type.Null()]),
    signedOffAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'CloseTask' },
);

const UserIdSchema = Type.Union([Type.String({ pattern: idPattern('user') }), Type.Null()]);

function renderPeriod(period: Period) {
  return {
    period: period.month.slice(0, 7),
    fiscalYear: period.fiscalYear,
    periodNumber: period.periodNumber,
    startsOn: period.month,
    endsOn: lastDayOfMonth(period.month),
    status: period.status,
    closedBy: period.closedBy === null ? null : formatId('user', period.closedBy),
    closedAt: period.closedAt === null ? null : period.closedAt.toISOString(),
  };
}

function renderEvent(event: PeriodEvent) {
  return {
    action: event.action,
    reason: event.reason,
    actorId: formatId('user', event.actor),
    occurredAt: event.occurredAt.toISOString(),
  };
}

function renderTask(task: CloseTask) {
  return {
    id: formatId('closeTask', task.id),
    period: task.month.slice(0, 7),
    position: task.position,
    title: task.title,
    assigneeId: task.assignee === null ? null : formatId('user', task.assignee),
    dueOn: task.dueOn,
    status: task.status,
    signedOffBy: task.signedOffBy === null ? null : formatId('user', task.signedOffBy),
    signedOffAt: task.signedOffAt === null ? null : task.signedOffAt.toISOString(),
  };
}

function userUuid(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  return parseId('user', value);
}

export async function periodsRoutes(app: App, options: { periods: PeriodsService }): Promise<void> {
  const { periods } = options;
  app.addSchema(PeriodSchema);
  app.addSchema(TaskSchema);
  const actorOf = (request: Parameters<typeof requirePrincipal>[0]): Actor => {
    const principal = requirePrincipal(request);
    return { userId: principal.userId, roles: principal.roles };
  };

  app.get(
    '/v1/entities/:entityId/periods',
    {
      config: { ...requirePermission('ledger.periods.read') },
      schema: {
        summary: 'The monthly periods of a fiscal year (the current one by default)',
        tags: ['periods'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          { fiscalYear: Type.Optional(Type.Integer({ minimum: 1901, maximum: 2999 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('Period')) }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const fiscalYear = request.query.fiscalYear ?? new Date().getUTCFullYear();
      return { items: (await periods.list(principal.tenant, entityId, fiscalYear)).map(renderPeriod) };
    },
  );

  app.get(
    '/v1/entities/:entityId/periods/:period',
    {
      config: { ...requirePermission('ledger.periods.read') },
      schema: {
        summary: 'One period with its close and reopen history',
        tags: ['periods'],
        security: tenantSecurity,
        params: PeriodParams,
        response: {
          200: Type.Object({ period: Type.Ref('Period'), events: Type.Array(Type.Unknown()) }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const result = await periods.get(principal.tenant, entityId, parsePeriod(request.params.period));
      return { period: renderPeriod(result.period), events: result.events.map(renderEvent) };
    },
  );

  app.post(
    '/v1/entities/:entityId/periods/:period/close',
    {
      config: { ...requirePermission('ledger.periods.close') },
      schema: {
        summary: 'Close a period: postings dated in it are refused from now on',
        tags: ['periods'],
        security: tenantSecurity,
        params: PeriodParams,
        headers: IdempotencyHeaders,
        response: { 200: Type.Ref('Period'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const month = parsePeriod(request.params.period);
      const key = request.headers['idempotency-key'];
      const result = await periods.close(principal.tenant, actorOf(request), entityId, month, key, renderPeriod);
      return sendIdempotent(reply, result);
    },
  );

  app.post(
    '/v1/entities/:entityId/periods/:period/reopen',
    {
      config: { ...requirePermission('ledger.periods.reopen') },
      schema: {
        summary: 'Reopen a closed period (partner or owner, with a reason; recorded)',
        tags: ['periods'],
        security: tenantSecurity,
        params: PeriodParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          { reason: Type.String({ minLength: 1, maxLength: ledgerLimits.reasonLengthMax, pattern: '\\S' }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Ref('Period'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const month = parsePeriod(request.params.period);
      const result = await periods.reopen(
        principal.tenant,
        actorOf(request),
        entityId,
        month,
        request.body.reason,
        request.headers['idempotency-key'],
        renderPeriod,
      );
      return sendIdempotent(reply, result);
    },
  );

  app.post(
    '/v1/entities/:entityId/fiscal-years/:fiscalYear/close',
    {
      config: { ...requirePermission('ledger.fiscalYear.close') },
      schema: {
        summary: 'Year-end close: post the closing entry to retained earnings (Idempotency-Key required)',
        tags: ['periods'],
        security: tenantSecurity,
        params: Type.Object({
          entityId: Type.String({ maxLength: 100 }),
          fiscalYear: Type.Integer({ minimum: 1901, maximum: 2999 }),
        }),
        headers: IdempotencyHeaders,
        response: { 201: Type.Ref('JournalEntry'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const result = await periods.closeFiscalYear(
        principal.tenant,
        actorOf(request),
        entityId,
        request.params.fiscalYear,
        request.headers['idempotency-key'],
        renderEntry,
      );
      return sendIdempotent(reply, result);
    },
  );

  app.get(
    '/v1/entities/:entityId/periods/:period/checklist',
    {
      config: { ...requirePermission('ledger.checklist.read') },
      schema: {
        summary: "The period's close checklist, rolled forward from the previous one on first read",
        tags: ['periods'],
        security: tenantSecurity,
        params: PeriodParams,
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('CloseTask')) }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const tasks = await periods.checklist(principal.tenant, entityId, parsePeriod(request.params.period));
      return { items: tasks.map(renderTask) };
    },
  );

  app.post(
    '/v1/entities/:entityId/periods/:period/checklist',
    {
      config: { ...requirePermission('ledger.checklist.write') },
      schema: {
        summary: 'Add a task to the close checklist',
        tags: ['periods'],
        security: tenantSecurity,
        params: PeriodParams,
        headers: IdempotencyHeaders,
        body: Type.Object(
          {
            title: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
            assigneeId: Type.Optional(UserIdSchema),
            dueOn: Type.Optional(Type.Union([DateSchema, Type.Null()])),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Ref('CloseTask'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const body = request.body;
      const task = await periods.addTask(principal.tenant, entityId, parsePeriod(request.params.period), {
        title: body.title.trim(),
        assignee: userUuid(body.assigneeId) ?? null,
        dueOn: body.dueOn ? checkDate(body.dueOn, 'dueOn') : null,
      });
      return reply.code(201).send(renderTask(task));
    },
  );

  app.patch(
    '/v1/entities/:entityId/periods/:period/checklist/:taskId',
    {
      config: { ...requirePermission('ledger.checklist.write') },
      schema: {
        summary: 'Change a checklist task; status "done" signs it off as the caller',
        tags: ['periods'],
        security: tenantSecurity,
        params: TaskParams,
        body: Type.Object(
          {
            title: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })),
            assigneeId: Type.Optional(UserIdSchema),
            dueOn: Type.Optional(Type.Union([DateSchema, Type.Null()])),
            status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('done')])),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Type.Ref('CloseTask'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      parsePeriod(request.params.period);
      const taskId = pathId('closeTask', request.params.taskId, 'CLOSE_TASK_NOT_FOUND');
      const body = request.body;
      const task = await periods.updateTask(principal.tenant, actorOf(request), entityId, taskId, {
        ...(body.title === undefined ? {} : { title: body.title.trim() }),
        ...(body.assigneeId === undefined ? {} : { assignee: userUuid(body.assigneeId) ?? null }),
        ...(body.dueOn === undefined ? {} : { dueOn: body.dueOn === null ? null : checkDate(body.dueOn, 'dueOn') }),
        ...(body.status === undefined ? {} : { status: body.status }),
      });
      return renderTask(task);
    },
  );
}
