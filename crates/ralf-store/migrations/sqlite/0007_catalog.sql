-- The service catalog (docs/catalog.md). Kept column-for-column in step with
-- ../postgres/0007_catalog.sql.

-- A project's catalog: where its files are and how its rollouts run. No row: no catalog.
CREATE TABLE catalog_settings (
    project_id    INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    repository_id INTEGER REFERENCES repositories(id),
    path          TEXT    NOT NULL DEFAULT 'catalog/projects/',
    branch        TEXT,                        -- NULL: the repository's branch
    write_back    BOOLEAN NOT NULL DEFAULT FALSE,
    parallelism   INTEGER NOT NULL DEFAULT 1
);

-- What ralf recorded of each service's last rollout: its last outcome (deployed, degraded,
-- failed, held, rolled_back), written as each service reaches one.
CREATE TABLE catalog_services (
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    deployed_at  TEXT,
    "commit"     TEXT,                         -- the catalog's commit it was deployed from
    last_status  TEXT,                         -- JSON: the status object of its last step
    last_task_id INTEGER,                      -- no foreign key: a deleted task stays named
    updated      TEXT    NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- Rollouts. `plan` and `options` (JSON) are fixed when it starts; what happens is in
-- catalog_rollout_events. `status` follows the events; `finished` is set once, when it ends.
CREATE TABLE catalog_rollouts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    status      TEXT    NOT NULL,
    selection   TEXT    NOT NULL,              -- JSON
    plan        TEXT    NOT NULL,              -- JSON
    options     TEXT    NOT NULL,              -- JSON
    "commit"    TEXT    NOT NULL,
    started_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created     TEXT    NOT NULL,
    finished    TEXT
);
CREATE INDEX catalog_rollouts_project ON catalog_rollouts(project_id, id);
-- At most one unfinished rollout per project, however many servers start one.
CREATE UNIQUE INDEX catalog_rollouts_one_unfinished ON catalog_rollouts(project_id)
    WHERE finished IS NULL;

-- A rollout's events, in order. Whoever appends one names the sequence number after the last
-- event it replayed, so of two servers that acted on the same history one wins and the other
-- reads again. A step's start (with its task, inserted in the same transaction) is recorded
-- once only: `started_step` is set for step_started events alone.
CREATE TABLE catalog_rollout_events (
    rollout_id   INTEGER NOT NULL REFERENCES catalog_rollouts(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    started_step TEXT,
    task_id      INTEGER,                      -- the started step's task; no foreign key
    event        TEXT    NOT NULL,             -- JSON
    created      TEXT    NOT NULL,
    PRIMARY KEY (rollout_id, seq),
    UNIQUE (rollout_id, started_step)
);
CREATE INDEX catalog_rollout_events_task ON catalog_rollout_events(task_id);

-- A catalog step's report ($RALF_STEP_REPORT), as its task left it; stored before the task
-- ends.
CREATE TABLE catalog_step_reports (
    task_id     INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    report      TEXT    NOT NULL
);
