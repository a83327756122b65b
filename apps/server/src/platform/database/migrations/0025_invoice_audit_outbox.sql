-- The audit events of issued invoices that are not yet in their firm's log: an outbox.
--
-- Issuing a month commits its invoices in the registry, and each invoice's event goes to its
-- firm's own log, which may be another database, so the two cannot share a transaction. Before
-- this table an event whose append failed (the firm's database unreachable, a crash between
-- the two) was lost: issuing the month again added only firms not yet issued. Now an invoice
-- and its row here commit in one statement; the row is deleted in the same registry
-- transaction that saw its event appended (rows locked FOR UPDATE SKIP LOCKED, so two issuers
-- never append the same event at once), and the append itself writes nothing when the firm's
-- log already holds the invoice's event (a crash after the append, before the delete).
-- Control-plane table like issued_invoices: owner role only, no runtime grant.
create table issued_invoice_audits_pending (
  invoice_id text primary key references issued_invoices (id),
  tenant uuid not null,
  month date not null check (extract(day from month) = 1)
);
create index issued_invoice_audits_pending_month on issued_invoice_audits_pending (month);
