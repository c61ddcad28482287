-- The work graph: task fields beyond what the engine needed, inputs,
-- dependencies, versions, locks, org templates and the domain event log.

ALTER TABLE tasks ADD COLUMN supervisor_id BLOB;
ALTER TABLE tasks ADD COLUMN due_at TEXT;
ALTER TABLE tasks ADD COLUMN position TEXT;
ALTER TABLE tasks ADD COLUMN lock_holder_type TEXT;
ALTER TABLE tasks ADD COLUMN lock_holder_id BLOB;
ALTER TABLE tasks ADD COLUMN lock_expires_at TEXT;
-- Set once, in the transaction that queues the auto-run execution.
ALTER TABLE tasks ADD COLUMN auto_run_execution_id BLOB;
-- The error of the task's last failed execution (cleared by a success).
ALTER TABLE tasks ADD COLUMN last_error TEXT;
-- The orders a project's task list is read in (live tasks only).
CREATE INDEX tasks_project_order ON tasks (project_id, priority DESC, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_project_status ON tasks (project_id, status, priority DESC, created_at, id) WHERE deleted_at IS NULL;

ALTER TABLE task_outputs ADD COLUMN deleted_at TEXT;

CREATE TABLE task_inputs (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    task_id     BLOB NOT NULL REFERENCES tasks (id),
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL,
    position    INTEGER NOT NULL,
    content     TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX task_inputs_task ON task_inputs (task_id, position);

-- task_id consumes depends_on's outputs (depends_on is upstream).
CREATE TABLE task_dependencies (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    task_id     BLOB NOT NULL REFERENCES tasks (id),
    depends_on  BLOB NOT NULL REFERENCES tasks (id),
    created_at  TEXT NOT NULL,
    UNIQUE (task_id, depends_on)
) STRICT;
CREATE INDEX task_dependencies_upstream ON task_dependencies (depends_on);

CREATE TABLE task_versions (
    task_id      BLOB NOT NULL REFERENCES tasks (id),
    version      INTEGER NOT NULL,
    org_id       BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    snapshot     TEXT NOT NULL,
    change_type  TEXT NOT NULL,
    summary      TEXT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     BLOB,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (task_id, version)
) STRICT;

CREATE TABLE task_templates (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX task_templates_org ON task_templates (org_id, created_at);

-- Domain events, written in the transaction of the change they describe.
CREATE TABLE events (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    BLOB NOT NULL,
    actor_type     TEXT NOT NULL,
    actor_id       BLOB,
    data           TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;
CREATE INDEX events_org ON events (org_id, id);
