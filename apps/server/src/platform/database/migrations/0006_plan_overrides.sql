-- Per-tenant overrides of the tier's usage plan and bulkheads (limits domain). Registry data,
-- written by the operator API with the owner role; the runtime role already reads its own
-- tenant row (policy tenant_self) and needs nothing more. The server checks the shape.
alter table tenants
  add column plan_overrides jsonb not null default '{}'::jsonb
    constraint tenants_plan_overrides_object check (jsonb_typeof(plan_overrides) = 'object');
