-- A pooled firm's job writes its checkpoint to its own queue row inside its tenant
-- transaction, so the row stays locked while that transaction runs (at batch priority on a busy
-- machine, a while). The worker's heartbeat renewed all its jobs' leases in one statement, which
-- waited on that lock: every other job's renewal and cancel check waited with it. Now the
-- heartbeat skips a row another transaction holds, and the checkpoint write renews the lease
-- itself, in the same statement, so the job keeps its lease once that transaction commits. The
-- runtime role may set the lease of its own firm's jobs for that (row-level security applies);
-- it still cannot take a job (lease_owner) or change its attempts.
grant update (lease_expires_at) on jobs to {{runtime_role}};
