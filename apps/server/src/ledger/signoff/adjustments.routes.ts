import { Type } from 'typebox';
import { type Action, requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { formatId } from '../../platform/ids.ts';
import { DateSchema, EntityParams, LineInputSchema, pathId } from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import type { AdjustmentAction, AdjustmentsService, AdjustmentView } from './adjustments.service.ts';
import type { Adjustment } from './adjustments.store.ts';

const AdjustmentParams = Type.Object({
  entityId: Type.String({ maxLength: 100 }),
  adjustmentId: Type.String({ maxLength: 100 }),
});

const DocumentSchema = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), url: Type.String({ minLength: 1, maxLength: 2000 }) },
  { additionalProperties: false },
);

const CommentText = Type.String({ minLength: 1, maxLength: ledgerLimits.commentLengthMax, pattern: '\\S' });

const CreateBody = Type.Object(
  {
    date: DateSchema,
    kind: Type.Union([Type.Literal('adjusting'), Type.Literal('reclassifying')]),
    memo: Type.Optional(Type.String({ maxLength: ledgerLimits.memoLengthMax })),
    lines: Type.Array(LineInputSchema, { maxItems: ledgerLimits.linesPerEntryMax }),
    documents: Type.Optional(Type.Array(DocumentSchema, { maxItems: ledgerLimits.documentsPerAdjustmentMax })),
    comment: Type.Optional(CommentText),
  },
  { additionalProperties: false },
);

function renderAdjustment(adjustment: Adjustment) {
  return {
    id: formatId('adjustment', adjustment.id),
    entityId: formatId('entity', adjustment.entityId),
    status: adjustment.status,
    date: adjustment.date,
    kind: adjustment.kind,
    memo: adjustment.memo,
    lines: adjustment.lines,
    documents: adjustment.documents,
    preparedBy: formatId('user', adjustment.preparedBy),
    submittedAt: adjustment.submittedAt?.toISOString() ?? null,
    approvedBy: adjustment.approvedBy === null ? null : formatId('user', adjustment.approvedBy),
    approvedAt: adjustment.approvedAt?.toISOString() ?? null,
    postedEntryId: adjustment.postedEntryId === null ? null : formatId('journalEntry', adjustment.postedEntryId),
  };
}

function renderView(view: AdjustmentView) {
  return {
    ...renderAdjustment(view.adjustment),
    comments: view.comments.map((comment) => ({
      id: formatId('comment', comment.id),
      authorId: formatId('user', comment.author),
      body: comment.body,
      createdAt: comment.createdAt.toISOString(),
    })),
  };
}

const actions: AdjustmentAction[] = ['submit', 'approve', 'reject', 'post'];

/** The access-table action of each sign-off step: preparers submit and post, reviewers decide. */
function adjustmentActionPermission(action: AdjustmentAction): Action {
  if (action === 'approve' || action === 'reject') return 'ledger.adjustments.approve';
  return action === 'post' ? 'ledger.adjustments.post' : 'ledger.adjustments.prepare';
}

export async function adjustmentsRoutes(app: App, options: { adjustments: AdjustmentsService }): Promise<void> {
  const { adjustments } = options;

  app.post(
    '/v1/entities/:entityId/adjustments',
    {
      config: { ...requirePermission('ledger.adjustments.prepare') },
      schema: {
        summary: 'Prepare an adjusting or reclassifying entry as a draft for sign-off',
        tags: ['sign-off'],
        security: tenantSecurity,
        params: EntityParams,
        headers: IdempotencyHeaders,
        body: CreateBody,
        response: { 201: Type.Unknown(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const result = await adjustments.create(
        principal.tenant,
        { userId: principal.userId, roles: principal.roles },
        entityId,
        request.body,
        request.headers['idempotency-key'],
        renderView,
      );
      return sendIdempotent(reply, result);
    },
  );

  app.get(
    '/v1/entities/:entityId/adjustments',
    {
      config: { ...requirePermission('ledger.adjustments.read') },
      schema: {
        summary: 'List adjustments, optionally by status',
        tags: ['sign-off'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          {
            status: Type.Optional(
              Type.Union(['draft', 'submitted', 'approved', 'posted'].map((status) => Type.Literal(status))),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Type.Unknown()) }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const status = (request.query.status ?? null) as Adjustment['status'] | null;
      return { items: (await adjustments.list(principal.tenant, entityId, status)).map(renderAdjustment) };
    },
  );

  app.get(
    '/v1/entities/:entityId/adjustments/:adjustmentId',
    {
      config: { ...requirePermission('ledger.adjustments.read') },
      schema: {
        summary: 'Read an adjustment with its comments',
        tags: ['sign-off'],
        security: tenantSecurity,
        params: AdjustmentParams,
        response: { 200: Type.Unknown(), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const id = pathId('adjustment', request.params.adjustmentId, 'ADJUSTMENT_NOT_FOUND');
      return renderView(await adjustments.get(principal.tenant, entityId, id));
    },
  );

  app.post(
    '/v1/entities/:entityId/adjustments/:adjustmentId/comments',
    {
      config: { ...requirePermission('ledger.adjustments.comment') },
      schema: {
        summary: 'Comment on an adjustment',
        tags: ['sign-off'],
        security: tenantSecurity,
        params: AdjustmentParams,
        headers: IdempotencyHeaders,
        body: Type.Object({ body: CommentText }, { additionalProperties: false }),
        response: { 201: Type.Unknown(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const id = pathId('adjustment', request.params.adjustmentId, 'ADJUSTMENT_NOT_FOUND');
      const actor = { userId: principal.userId, roles: principal.roles };
      const view = await adjustments.comment(principal.tenant, actor, entityId, id, request.body.body);
      return reply.code(201).send(renderView(view));
    },
  );

  for (const action of actions) {
    app.post(
      `/v1/entities/:entityId/adjustments/:adjustmentId/${action}`,
      {
        config: { ...requirePermission(adjustmentActionPermission(action)) },
        schema: {
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} an adjustment${action === 'post' ? ' (Idempotency-Key required)' : ''}`,
          tags: ['sign-off'],
          security: tenantSecurity,
          params: AdjustmentParams,
          headers: IdempotencyHeaders,
          body: Type.Optional(Type.Object({ comment: Type.Optional(CommentText) }, { additionalProperties: false })),
          response: { 200: Type.Unknown(), ...problemResponses },
        },
      },
      async (request, reply) => {
        const principal = requirePrincipal(request);
        const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
        const id = pathId('adjustment', request.params.adjustmentId, 'ADJUSTMENT_NOT_FOUND');
        const result = await adjustments.act(
          principal.tenant,
          { userId: principal.userId, roles: principal.roles },
          entityId,
          id,
          action,
          request.body?.comment,
          request.headers['idempotency-key'],
          renderView,
        );
        return sendIdempotent(reply, result);
      },
    );
  }
}
