-- Usage ingestion at 50,000 events per second (bench/metering.bench.ts).
--
-- The (tenant, occurred_at) b-tree made every event insert touch one of a thousand leaf
-- pages; only reproducibility checks read raw events by tenant and time, and a BRIN index on
-- the time (events arrive nearly in time order) serves them for a fraction of the write cost.
drop index usage_events_tenant_time;
create index usage_events_occurred_brin on usage_events using brin (occurred_at);

-- Every flush updates the same hour, day and month rows again; free room on each page lets
-- those updates stay on the page (HOT) instead of adding a primary-key entry per update.
alter table usage_rollups set (fillfactor = 50);
