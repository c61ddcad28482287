-- What an agent is doing is read from its live executions (not written on
-- the agent's row by every execution that starts or stops, which made that
-- row a point every concurrent execution of one agent queued on).
CREATE INDEX executions_live ON executions (org_id, agent_id)
    WHERE status NOT IN ('completed', 'failed', 'cancelled');

-- Agents' stored status keeps only what people set.
UPDATE agents SET status = 'idle' WHERE status NOT IN ('idle', 'disabled');
