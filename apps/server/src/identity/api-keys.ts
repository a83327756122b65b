import type { TenantContext, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { newUuid } from '../platform/ids.ts';
import type { TenancyService } from '../tenancy/tenancy.service.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { AuthEventSink, AuthOrigin } from './auth-events.ts';
import type { CredentialKind, VerifiedCaller } from './credentials.ts';
import { identityLimits } from './identity.limits.ts';
import { looksLike, newSecretToken, parseSecretToken, secretMatches, secretTokenPrefix } from './secret-tokens.ts';
import { countEntities } from './users.store.ts';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scope: 'read' | 'write';
  entityIds: string[] | null;
  createdBy: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  createdAt: Date;
}

interface ApiKeyRow {
  id: string;
  name: string;
  scope: 'read' | 'write';
  entity_ids: string[] | null;
  created_by: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  secret_hash: string;
}

function keyOf(tenantId: string, row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: secretTokenPrefix('apiKey', tenantId, row.id),
    scope: row.scope,
    entityIds: row.entity_ids,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    createdAt: row.created_at,
  };
}

const columns =
  'id, name, scope, entity_ids, created_by, expires_at, revoked_at, last_used_at, created_at, secret_hash';
// last_used_at is written at most this often per key, so busy keys do not write on every request.
const lastUsedResolutionSeconds = 60;

/**
 * API keys for integrations: `chk_<tenant><key id>_<secret>`, shown once and stored as a
 * sha-256 hash; scoped read or write and optionally to listed entities (the database entity
 * scope); expiring and revocable. A key's requests run as its firm, so the firm's usage plan
 * (rate, quota, bulkheads) applies to them like to any other request of the firm.
 */
export class ApiKeysService implements CredentialKind {
  readonly #scopes: TenantScopes;
  readonly #tenancy: TenancyService;
  readonly #events: AuthEventSink;

  constructor(scopes: TenantScopes, tenancy: TenancyService, events: AuthEventSink) {
    this.#scopes = scopes;
    this.#tenancy = tenancy;
    this.#events = events;
  }

  /** Errors: IDENTITY_API_KEY_INVALID. */
  async create(
    context: TenantContext,
    creatorId: string,
    input: { name: string; scope: 'read' | 'write'; entityIds: string[] | null; expiresAt: Date | null },
    origin: AuthOrigin,
  ): Promise<{ key: ApiKey; secret: string }> {
    if (input.expiresAt !== null && input.expiresAt.getTime() <= Date.now()) {
      throw new AppError('IDENTITY_API_KEY_INVALID', 'The expiry is in the past.');
    }
    const entityIds = input.entityIds === null ? null : [...new Set(input.entityIds)];
    return await this.#scopes.run(context, async (db) => {
      if (entityIds !== null && (await countEntities(db, entityIds)) !== entityIds.length) {
        throw new AppError('IDENTITY_API_KEY_INVALID', 'An entity does not exist in the firm.');
      }
      const id = newUuid();
      const { token, hash } = newSecretToken('apiKey', db.tenantId, id);
      const { rows } = await db.query<ApiKeyRow>(
        `insert into api_keys (tenant_id, id, name, scope, entity_ids, secret_hash, created_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning ${columns}`,
        [db.tenantId, id, input.name.trim(), input.scope, entityIds, hash, creatorId, input.expiresAt],
      );
      const row = rows[0];
      if (!row) throw new Error('api key insert returned no row');
      await this.#events.record(db, {
        action: 'identity.api_key.created',
        actorUserId: creatorId,
        resource: { type: 'api_key', id },
        summary: { name: row.name, scope: row.scope, entities: entityIds?.length ?? null },
        origin,
      });
      return { key: keyOf(db.tenantId, row), secret: token };
    });
  }

  async list(context: TenantContext): Promise<ApiKey[]> {
    return await this.#scopes.run(context, async (db) => {
      const { rows } = await db.query<ApiKeyRow>(`select ${columns} from api_keys order by created_at desc limit $1`, [
        identityLimits.apiKeysListedMax,
      ]);
      return rows.map((row) => keyOf(db.tenantId, row));
    });
  }

  /** Errors: IDENTITY_API_KEY_NOT_FOUND. */
  async revoke(context: TenantContext, actorId: string, keyId: string, origin: AuthOrigin): Promise<ApiKey> {
    return await this.#scopes.run(context, async (db) => {
      const { rows } = await db.query<ApiKeyRow>(
        `update api_keys set revoked_at = coalesce(revoked_at, now()) where id = $1 returning ${columns}`,
        [keyId],
      );
      const row = rows[0];
      if (!row) throw new AppError('IDENTITY_API_KEY_NOT_FOUND');
      await this.#events.record(db, {
        action: 'identity.api_key.revoked',
        actorUserId: actorId,
        resource: { type: 'api_key', id: keyId },
        origin,
      });
      return keyOf(db.tenantId, row);
    });
  }

  accepts(token: string): boolean {
    return looksLike('apiKey', token);
  }

  /** Verifies a presented key; any failure is AUTH_TOKEN_INVALID. */
  async verify(token: string): Promise<VerifiedCaller> {
    const parsed = parseSecretToken('apiKey', token);
    const tenant = parsed ? await this.#tenancy.lookup(parsed.tenantId) : null;
    if (!parsed || !tenant) throw new AppError('AUTH_TOKEN_INVALID');
    const row = await this.#scopes.run(tenantContextOf(tenant), async (db) => {
      const found = (await db.query<ApiKeyRow>(`select ${columns} from api_keys where id = $1`, [parsed.id])).rows[0];
      if (!found || !secretMatches(parsed.secret, found.secret_hash)) return null;
      const staleMs = Date.now() - lastUsedResolutionSeconds * 1000;
      if (found.last_used_at === null || found.last_used_at.getTime() < staleMs) {
        await db.query('update api_keys set last_used_at = now() where id = $1', [parsed.id]);
      }
      return found;
    });
    const usable =
      row !== null && row.revoked_at === null && (row.expires_at === null || row.expires_at.getTime() > Date.now());
    if (!usable) throw new AppError('AUTH_TOKEN_INVALID', 'The API key is unknown, revoked or expired.');
    return {
      tenantId: tenant.id,
      userId: row.created_by,
      facts: { kind: 'apiKey', scope: row.scope },
      entityIds: row.entity_ids,
      credential: 'apiKey',
      apiKeyId: row.id,
      sessionId: null,
    };
  }
}
