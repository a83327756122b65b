-- Batch jobs: a queue in PostgreSQL, claimed with FOR UPDATE SKIP LOCKED (docs/jobs.md).
--
-- Tenants submit, read and cancel their own jobs through the tenant scope (runtime role,
-- tenant_isolation policy). The dispatcher claims work across tenants with the owner role,
-- which FORCE ROW LEVEL SECURITY would otherwise filter like anyone else: the permissive
-- policy dispatcher_all applies TO {{owner_role}} only (the role running migrations), so
-- the runtime role gains nothing from it. {{owner_role}} and {{runtime_role}} are replaced
-- with quoted role names when the migration runs.

create table jobs (
  tenant_id uuid not null,
  id uuid not null,
  kind text not null check (kind ~ '^[a-z][a-z0-9_.-]{0,63}$'),
  status text not null check (status in ('queued', 'running', 'succeeded', 'cancelled', 'dead')),
  priority smallint not null default 0 check (priority between -100 and 100),
  payload jsonb not null,
  -- Written by handlers inside their own tenant transaction, so a retry resumes exactly where
  -- the last committed batch ended.
  checkpoint jsonb,
  result jsonb,
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null check (max_attempts between 1 and 100),
  run_after timestamptz not null default now(),
  lease_owner text,
  lease_expires_at timestamptz,
  progress_percent smallint not null default 0 check (progress_percent between 0 and 100),
  progress_message text,
  cancel_requested_at timestamptz,
  last_error text,
  created_by uuid,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  check ((status = 'running') = (lease_owner is not null and lease_expires_at is not null))
);
-- The claim walks a tenant's ready jobs in priority order; running jobs are counted per tenant
-- for its cap and swept by lease expiry.
create index jobs_tenant_ready_idx on jobs (tenant_id, priority desc, run_after, id) where status = 'queued';
create index jobs_tenant_running_idx on jobs (tenant_id, lease_expires_at) where status = 'running';

-- One row per attempt: who ran it, when, and how it ended. The timestamps are what the
-- concurrency and fairness tests measure.
create table job_attempts (
  tenant_id uuid not null,
  job_id uuid not null,
  attempt integer not null check (attempt >= 1),
  worker text not null,
  started_at timestamptz not null,
  ended_at timestamptz,
  outcome text check (outcome in ('succeeded', 'failed', 'cancelled', 'lost', 'released')),
  error text,
  primary key (tenant_id, job_id, attempt),
  foreign key (tenant_id, job_id) references jobs (tenant_id, id) on delete cascade
);

-- Scheduling state per tenant: the lock a claim holds while it checks the tenant's cap, and
-- the stride-scheduling pass (virtual time of the tenant's next start).
create table job_tenants (
  tenant_id uuid not null,
  pass double precision not null default 0,
  last_claimed_at timestamptz,
  primary key (tenant_id)
);

alter table jobs enable row level security;
alter table jobs force row level security;
create policy tenant_isolation on jobs
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy dispatcher_all on jobs to {{owner_role}} using (true) with check (true);

alter table job_attempts enable row level security;
alter table job_attempts force row level security;
create policy tenant_isolation on job_attempts
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy dispatcher_all on job_attempts to {{owner_role}} using (true) with check (true);

alter table job_tenants enable row level security;
alter table job_tenants force row level security;
create policy tenant_isolation on job_tenants
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy dispatcher_all on job_tenants to {{owner_role}} using (true) with check (true);

-- Tenants submit jobs, read them with their attempts, cancel them, and checkpoint handlers'
-- progress; every other state change belongs to the dispatcher.
grant select, insert on jobs to {{runtime_role}};
grant update (status, cancel_requested_at, finished_at, updated_at, checkpoint) on jobs to {{runtime_role}};
grant select on job_attempts to {{runtime_role}};
grant select, insert on job_tenants to {{runtime_role}};

-- The claim: weighted fair across tenants, capped per tenant, checked in the database so the
-- caps hold for any number of worker processes. p_tiers maps a tier name to
-- {"concurrency": n, "weight": w}. Candidate tenants are locked with SKIP LOCKED, so two
-- workers never claim for the same tenant at once; the cap is then counted in a later
-- statement (a fresh snapshot, taken after the lock), so it sees every committed claim.
--
-- Order: fewest running jobs per weight first (a tenant below its fair share of the workers
-- goes first), then the stride pass (each start advances it by 1/weight; a tenant coming back
-- from idle joins at the virtual time of the running tenants instead of with stale credit),
-- then the tenant served longest ago.
create function jobs_claim(p_worker text, p_kinds text[], p_tiers jsonb, p_lease_ms integer, p_tenants_max integer)
  returns setof jobs
  language plpgsql volatile
  as $$
declare
  v_virtual double precision;
  v_candidate record;
  v_running integer;
  v_job jobs;
begin
  select coalesce(min(t.pass), 0) into v_virtual
    from job_tenants t
   where exists (select 1 from jobs r where r.tenant_id = t.tenant_id and r.status = 'running');

  for v_candidate in
    select t.tenant_id,
           (p_tiers -> tn.tier ->> 'concurrency')::integer as cap,
           (p_tiers -> tn.tier ->> 'weight')::double precision as weight
      from job_tenants t
      join tenants tn on tn.id = t.tenant_id
     where tn.status = 'active'
       and p_tiers ? tn.tier
       and exists (select 1 from jobs q
                    where q.tenant_id = t.tenant_id and q.status = 'queued'
                      and q.run_after <= clock_timestamp() and q.kind = any (p_kinds))
     order by (select count(*) from jobs r where r.tenant_id = t.tenant_id and r.status = 'running')
                / (p_tiers -> tn.tier ->> 'weight')::double precision,
              greatest(t.pass, v_virtual),
              t.last_claimed_at nulls first,
              t.tenant_id
     limit p_tenants_max
       for update of t skip locked
  loop
    -- One tenant's broken row must not stop the queue for every tenant: a claim that fails is
    -- undone (to the block's savepoint), reported, and the next tenant is tried.
    begin
      select count(*) into v_running from jobs r where r.tenant_id = v_candidate.tenant_id and r.status = 'running';
      continue when v_running >= v_candidate.cap;

      update jobs j
         set status = 'running',
             attempts = j.attempts + 1,
             lease_owner = p_worker,
             lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond',
             started_at = coalesce(j.started_at, clock_timestamp()),
             updated_at = clock_timestamp()
       where j.tenant_id = v_candidate.tenant_id
         and j.id = (select q.id from jobs q
                      where q.tenant_id = v_candidate.tenant_id and q.status = 'queued'
                        and q.run_after <= clock_timestamp() and q.kind = any (p_kinds)
                      order by q.priority desc, q.run_after, q.id
                      limit 1
                        for update skip locked)
      returning j.* into v_job;
      continue when not found;

      insert into job_attempts (tenant_id, job_id, attempt, worker, started_at)
      values (v_job.tenant_id, v_job.id, v_job.attempts, p_worker, clock_timestamp());
      update job_tenants
         set pass = greatest(pass, v_virtual) + 1.0 / v_candidate.weight,
             last_claimed_at = clock_timestamp()
       where tenant_id = v_candidate.tenant_id;
    exception when others then
      raise warning 'jobs_claim: claiming for tenant % failed: %', v_candidate.tenant_id, sqlerrm;
      continue;
    end;
    return next v_job;
    return;
  end loop;
end
$$;

revoke all on function jobs_claim(text, text[], jsonb, integer, integer) from public;
