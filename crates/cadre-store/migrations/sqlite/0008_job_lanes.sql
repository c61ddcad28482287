-- Fair claiming walks the ready jobs lane by lane (one lane per org, system
-- jobs in the all-zero lane) instead of ranking every ready job: these
-- partial indexes hold only ready and only running jobs, so a claim costs
-- O(lanes × batch) whatever the backlog.
CREATE INDEX jobs_ready_lane ON jobs
    (queue, COALESCE(org_id, X'00000000000000000000000000000000'), priority DESC, run_at, id)
    WHERE state IN ('available', 'failed');
CREATE INDEX jobs_running_lane ON jobs
    (queue, COALESCE(org_id, X'00000000000000000000000000000000'))
    WHERE state = 'running';
-- Superseded by jobs_ready_lane (queue depth reads its `queue` prefix).
DROP INDEX jobs_ready;
-- Only running jobs have a lease to rescue: index just those, so enqueues
-- and completions do not maintain it.
DROP INDEX jobs_lease;
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
