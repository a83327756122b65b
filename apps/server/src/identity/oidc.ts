import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Ajv } from 'ajv';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { type Static, Type } from 'typebox';
import type { TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { parseId } from '../platform/ids.ts';
import { type TenancyService, tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { TenantRecord } from '../tenancy/tenancy.types.ts';
import { isRole, type Role, roles } from './access.ts';
import { hasSecondFactor } from './authorize.ts';
import type { CredentialKind, VerifiedCaller } from './credentials.ts';
import { identityLimits } from './identity.limits.ts';
import type { MfaStanding } from './tokens.ts';

/**
 * External OIDC issuers (Amazon Cognito, Auth0, Keycloak, Entra ID): configured by the
 * operator for the whole deployment or for one firm. A token is verified with the issuer's
 * keys (JWKS URL, discovery, or an inline JWKS), its audience (ID tokens' `aud`; Cognito
 * access tokens carry `client_id` and `token_use` instead), then mapped to the same caller
 * as a built-in token. Tenant, tier and role come only from the claims the configuration
 * names, which must be attributes the issuer alone can write (in Cognito: custom attributes
 * that no app client may write, and groups); a per-tenant issuer cannot name another firm.
 */
const IssuerSchema = Type.Object(
  {
    issuer: Type.String({ minLength: 1 }),
    /** One of: the JWKS URL, discovery (issuer + /.well-known/openid-configuration), or inline keys. */
    jwksUri: Type.Optional(Type.String({ pattern: '^https?://' })),
    discovery: Type.Optional(Type.Boolean()),
    jwks: Type.Optional(Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) })),
    /** Accepted `aud` (ID tokens) or `client_id` (Cognito access tokens). */
    audience: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    /** Accepted Cognito `token_use` values; other issuers' tokens have none. */
    tokenUse: Type.Optional(Type.Array(Type.Union([Type.Literal('id'), Type.Literal('access')]))),
    /** A per-tenant issuer: every token is for this firm (`ten_…`). */
    tenantId: Type.Optional(Type.String()),
    claims: Type.Object(
      {
        tenant: Type.Optional(Type.String()),
        tier: Type.Optional(Type.String()),
        regulatoryTier: Type.Optional(Type.String()),
        role: Type.Optional(Type.String()),
        groups: Type.Optional(Type.String()),
        entities: Type.Optional(Type.String()),
        email: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    /** Issuer group or role value → Countinghouse role; unmapped values are ignored. */
    roleMap: Type.Optional(Type.Record(Type.String(), Type.Union(roles.map((role) => Type.Literal(role))))),
    /** The issuer enforces MFA for every user (e.g. a Cognito pool with MFA required). */
    mfaEnforced: Type.Optional(Type.Boolean()),
    algorithms: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

export type OidcIssuerConfig = Static<typeof IssuerSchema>;

/** Parses COUNTINGHOUSE_OIDC_ISSUERS: JSON, or `@path` to a JSON file; an array of issuers. */
export function parseOidcIssuers(raw: string | undefined): OidcIssuerConfig[] {
  if (raw === undefined) return [];
  const text = raw.startsWith('@') ? fs.readFileSync(raw.slice(1), 'utf8') : raw;
  const value: unknown = JSON.parse(text);
  const validate = new Ajv({ allErrors: true, strict: false }).compile(Type.Array(IssuerSchema));
  if (!validate(value)) {
    throw new Error(`COUNTINGHOUSE_OIDC_ISSUERS is invalid: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  }
  const issuers = value as OidcIssuerConfig[];
  for (const issuer of issuers) {
    const sources = [issuer.jwksUri, issuer.discovery ? 'discovery' : undefined, issuer.jwks].filter(Boolean);
    if (sources.length !== 1)
      throw new Error(`OIDC issuer ${issuer.issuer}: give exactly one of jwksUri, discovery, jwks`);
    if (!issuer.tenantId && !issuer.claims.tenant)
      throw new Error(`OIDC issuer ${issuer.issuer}: a tenant claim or tenantId is required`);
    if (!issuer.claims.role && !issuer.claims.groups)
      throw new Error(`OIDC issuer ${issuer.issuer}: a role or groups claim is required`);
  }
  return issuers;
}

/** What the verifier needs from identity: whether a user of this firm and role must use MFA. */
export type MfaRequirement = (tenant: TenantRecord, role: Role) => boolean;

interface ConfiguredIssuer {
  config: OidcIssuerConfig;
  keys: JWTVerifyGetKey;
  fixedTenantId: string | null;
}

const discoveryTimeoutMs = 5_000;

async function discoverJwksUri(issuer: string): Promise<string> {
  const response = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(discoveryTimeoutMs),
  });
  const document = (await response.json()) as { jwks_uri?: unknown };
  if (typeof document.jwks_uri !== 'string') throw new Error(`OIDC discovery for ${issuer} has no jwks_uri`);
  return document.jwks_uri;
}

function lazyRemoteKeys(config: OidcIssuerConfig): JWTVerifyGetKey {
  let keys: Promise<JWTVerifyGetKey> | null = null;
  return async (header, token) => {
    keys ??= (config.jwksUri ? Promise.resolve(config.jwksUri) : discoverJwksUri(config.issuer)).then((uri) =>
      createRemoteJWKSet(new URL(uri), { timeoutDuration: discoveryTimeoutMs }),
    );
    keys.catch(() => {
      keys = null;
    });
    return await (await keys)(header, token);
  };
}

/** A stable user id per (tenant, issuer, subject): the external user's row in the firm. */
function externalUserId(tenantId: string, issuer: string, subject: string): string {
  const hex = createHash('sha256').update(`${tenantId}\n${issuer}\n${subject}`).digest('hex');
  // Shaped as a version-8 (custom) UUID.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function tenantIdFrom(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  return parseId('tenant', value) ?? (/^[0-9a-f-]{36}$/.test(value) ? value : null);
}

export class OidcVerifier implements CredentialKind {
  readonly #issuers: Map<string, ConfiguredIssuer[]>;
  readonly #tenancy: TenancyService;
  readonly #scopes: TenantScopes;
  readonly #mfaRequired: MfaRequirement;
  readonly #provisioned = new Map<string, string>();

  constructor(configs: OidcIssuerConfig[], tenancy: TenancyService, scopes: TenantScopes, mfaRequired: MfaRequirement) {
    this.#tenancy = tenancy;
    this.#scopes = scopes;
    this.#mfaRequired = mfaRequired;
    this.#issuers = new Map();
    for (const config of configs) {
      const keys = config.jwks ? createLocalJWKSet(config.jwks as JSONWebKeySet) : lazyRemoteKeys(config);
      const fixedTenantId = config.tenantId === undefined ? null : tenantIdFrom(config.tenantId);
      if (config.tenantId !== undefined && fixedTenantId === null) throw new Error(`bad tenantId for ${config.issuer}`);
      const list = this.#issuers.get(config.issuer) ?? [];
      list.push({ config, keys, fixedTenantId });
      this.#issuers.set(config.issuer, list);
    }
  }

  accepts(_token: string, issuer: string | null): boolean {
    return issuer !== null && this.#issuers.has(issuer);
  }

  async verify(token: string): Promise<VerifiedCaller> {
    const candidates = this.#issuers.get(decodeIssuer(token)) ?? [];
    let lastError: unknown = null;
    for (const candidate of candidates) {
      try {
        return await this.#verifyWith(candidate, token);
      } catch (error) {
        lastError = error;
      }
    }
    if (lastError instanceof AppError) throw lastError;
    throw new AppError('AUTH_TOKEN_INVALID');
  }

  async #verifyWith(issuer: ConfiguredIssuer, token: string): Promise<VerifiedCaller> {
    const { config } = issuer;
    const payload = await this.#verifySignature(issuer, token);
    const tenant = await this.#tenantOf(issuer, payload);
    const role = roleFrom(config, payload);
    if (role === null) throw new AppError('AUTH_TOKEN_INVALID', 'The token maps to no Countinghouse role.');
    const subject = typeof payload.sub === 'string' ? payload.sub : null;
    if (subject === null) throw new AppError('AUTH_TOKEN_INVALID');
    const amr = Array.isArray(payload.amr)
      ? payload.amr.filter((item): item is string => typeof item === 'string')
      : [];
    const effectiveAmr = config.mfaEnforced ? [...new Set([...amr, 'pwd', 'mfa'])] : amr.length > 0 ? amr : ['pwd'];
    const mfa: MfaStanding = hasSecondFactor(effectiveAmr)
      ? 'enrolled'
      : this.#mfaRequired(tenant, role)
        ? 'enrol'
        : 'none';
    const userId = await this.#provision(tenant, config, subject, role, payload);
    return {
      tenantId: tenant.id,
      userId,
      facts: {
        kind: 'user',
        role,
        mfa,
        amr: effectiveAmr,
        authTimeSeconds: typeof payload.auth_time === 'number' ? payload.auth_time : Number(payload.iat ?? 0),
      },
      entityIds: entitiesFrom(config, payload),
      credential: 'oidc',
      apiKeyId: null,
      sessionId: null,
    };
  }

  async #verifySignature(issuer: ConfiguredIssuer, token: string): Promise<Record<string, unknown>> {
    const { config } = issuer;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, issuer.keys, {
        issuer: config.issuer,
        algorithms: config.algorithms ?? ['RS256', 'ES256'],
        clockTolerance: identityLimits.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch {
      throw new AppError('AUTH_TOKEN_INVALID');
    }
    const tokenUse = payload.token_use;
    if (config.tokenUse && (typeof tokenUse !== 'string' || !config.tokenUse.includes(tokenUse as 'id'))) {
      throw new AppError('AUTH_TOKEN_INVALID', 'The token_use is not accepted.');
    }
    // Cognito access tokens name the app client in client_id and carry no aud.
    const audiences = tokenUse === 'access' ? [payload.client_id] : [payload.aud].flat();
    if (!audiences.some((audience) => typeof audience === 'string' && config.audience.includes(audience))) {
      throw new AppError('AUTH_TOKEN_INVALID', 'The token is for another audience.');
    }
    return payload;
  }

  async #tenantOf(issuer: ConfiguredIssuer, payload: Record<string, unknown>): Promise<TenantRecord> {
    const { config } = issuer;
    const claimed = config.claims.tenant ? tenantIdFrom(payload[config.claims.tenant]) : null;
    if (issuer.fixedTenantId !== null && claimed !== null && claimed !== issuer.fixedTenantId) {
      throw new AppError('AUTH_TOKEN_INVALID', 'The token names another firm than its issuer serves.');
    }
    const tenantId = issuer.fixedTenantId ?? claimed;
    const tenant = tenantId ? await this.#tenancy.lookup(tenantId) : null;
    if (!tenant) throw new AppError('AUTH_TOKEN_INVALID', 'The token names no known firm.');
    // Tier claims must agree with the registry: a stale or forged claim is refused, never used.
    const tier = config.claims.tier ? payload[config.claims.tier] : undefined;
    const regulatory = config.claims.regulatoryTier ? payload[config.claims.regulatoryTier] : undefined;
    if (
      (tier !== undefined && tier !== tenant.tier) ||
      (regulatory !== undefined && regulatory !== tenant.regulatoryTier)
    ) {
      throw new AppError('AUTH_TOKEN_INVALID', "The token's tier claims disagree with the firm's registry entry.");
    }
    return tenant;
  }

  /** The external user's row in the firm (entities name their author), created on first sight. */
  async #provision(
    tenant: TenantRecord,
    config: OidcIssuerConfig,
    subject: string,
    role: Role,
    payload: Record<string, unknown>,
  ): Promise<string> {
    const userId = externalUserId(tenant.id, config.issuer, subject);
    const cacheKey = `${tenant.id}:${userId}`;
    if (this.#provisioned.get(cacheKey) === role) return userId;
    const digest = userId.replaceAll('-', '').slice(0, 24);
    const claimedEmail = config.claims.email ? payload[config.claims.email] : undefined;
    const email =
      typeof claimedEmail === 'string'
        ? `oidc+${digest}+${claimedEmail.toLowerCase()}`
        : `oidc+${digest}@external.invalid`;
    await this.#scopes.run(tenantContextOf(tenant), async (db) => {
      // An unusable password hash: external users never sign in with a password.
      await db.query(
        `insert into users (tenant_id, id, email, password_hash, roles) values ($1, $2, $3, '!external', $4)
         on conflict (tenant_id, id) do update set roles = excluded.roles, updated_at = now()
         where users.roles <> excluded.roles`,
        [tenant.id, userId, email.slice(0, identityLimits.emailLengthMax), [role]],
      );
    });
    if (this.#provisioned.size > 10_000) this.#provisioned.clear();
    this.#provisioned.set(cacheKey, role);
    return userId;
  }
}

function decodeIssuer(token: string): string {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iss?: unknown;
    };
    return typeof payload.iss === 'string' ? payload.iss : '';
  } catch {
    return '';
  }
}

/** The one role the token maps to: the role claim, else the most privileged mapped group. */
function roleFrom(config: OidcIssuerConfig, payload: Record<string, unknown>): Role | null {
  const values: string[] = [];
  const direct = config.claims.role ? payload[config.claims.role] : undefined;
  if (typeof direct === 'string') values.push(direct);
  const groups = config.claims.groups ? payload[config.claims.groups] : undefined;
  if (Array.isArray(groups)) values.push(...groups.filter((group): group is string => typeof group === 'string'));
  const mapped = values
    .map((value) => config.roleMap?.[value] ?? (isRole(value) ? value : null))
    .filter((role): role is Role => role !== null);
  return roles.find((role) => mapped.includes(role)) ?? null;
}

function entitiesFrom(config: OidcIssuerConfig, payload: Record<string, unknown>): string[] | null {
  if (!config.claims.entities) return null;
  const raw = payload[config.claims.entities];
  const list = typeof raw === 'string' ? raw.split(',').map((item) => item.trim()) : Array.isArray(raw) ? raw : null;
  if (list === null) return null;
  return list
    .slice(0, identityLimits.entityAssignmentsMax)
    .map((item) => (typeof item === 'string' ? parseId('entity', item) : null))
    .filter((id): id is string => id !== null);
}
