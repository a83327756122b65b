-- The commit-time balance check of each entry (journal_entry_balanced, last in 0017) reads the
-- entry's lines by tenant, entity, date and entry. Its PL/pgSQL plan, kept for the session,
-- uses the (tenant, entity, date) index and filters the entry's lines from the rest of that
-- day: seeding one entity with a million lines (about 1,400 a day) the check grew from 0.10 to
-- 0.27 ms per entry by 200,000 lines, and posting a batch slowed with it (7,000 lines/s at the
-- start, 1,640 on average over the million). With the entry as the index's fourth column the
-- index answers the check's four equalities exactly, whichever way the plan was made, and every
-- report that reads a date range of an entity still uses it by its first three columns.
create index journal_lines_entity_date_entry on journal_lines (tenant_id, entity_id, entry_date, entry_id);
drop index journal_lines_entity_date;
alter index journal_lines_entity_date_entry rename to journal_lines_entity_date;
