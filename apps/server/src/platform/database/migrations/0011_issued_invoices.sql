-- Issued invoices: a month's usage-based invoice, frozen when the operator issues it.
--
-- Control-plane table like usage_events (column `tenant`, owner role only, no runtime
-- grant). An issued invoice is a financial record: the trigger refuses UPDATE and DELETE
-- even for the owner, so late usage events can change the draft computed from the rollups
-- but never an invoice that was sent. Kept after a tenant is offboarded (the operator's books).
create table issued_invoices (
  id text primary key,
  tenant uuid not null,
  month date not null check (extract(day from month) = 1),
  currency char(3) not null,
  total_minor bigint not null,
  content jsonb not null,
  content_hash text not null check (content_hash ~ '^[0-9a-f]{64}$'),
  issued_at timestamptz not null default now(),
  unique (tenant, month)
);
create index issued_invoices_month on issued_invoices (month, tenant);

create function issued_invoices_refuse_change() returns trigger
  language plpgsql as $$
begin
  raise exception 'issued invoices are immutable (% refused)', tg_op using errcode = 'raise_exception';
end
$$;

create trigger issued_invoices_immutable
  before update or delete on issued_invoices
  for each row execute function issued_invoices_refuse_change();

create trigger issued_invoices_no_truncate
  before truncate on issued_invoices
  for each statement execute function issued_invoices_refuse_change();
