-- Several servers on one database, remote runners, secret answers that wait for any server.
-- Kept column-for-column in step with ../postgres/0002_cluster.sql.

-- The servers (nodes) that share this database, each with a heartbeat. A node that stops
-- touching its row is taken for dead, and the tasks it ran end in error.
CREATE TABLE nodes (
    id          TEXT    PRIMARY KEY,          -- random, new each time a server starts
    address     TEXT    NOT NULL DEFAULT '',  -- where it listens, for people reading the table
    started     TEXT    NOT NULL,
    touched     TEXT    NOT NULL
);

-- Remote executors. `project_id` NULL = a global runner. The runner's credential and its
-- one-time registration token are kept as sha256 hashes only.
CREATE TABLE runners (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id              INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    name                    TEXT    NOT NULL DEFAULT '',
    webhook                 TEXT    NOT NULL DEFAULT '',
    max_parallel_tasks      INTEGER NOT NULL DEFAULT 0,
    active                  BOOLEAN NOT NULL DEFAULT TRUE,
    tags                    TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    token_hash              TEXT    UNIQUE,                  -- NULL until registered
    registration_token_hash TEXT    UNIQUE,
    registration_expires    TEXT,
    touched                 TEXT,
    cleaning_requested      TEXT,
    created                 TEXT    NOT NULL
);
CREATE INDEX runners_project ON runners(project_id);

-- Who runs an active task: a server (node_id) or a runner (runner_id), never both.
ALTER TABLE tasks ADD COLUMN node_id TEXT;
ALTER TABLE tasks ADD COLUMN runner_id INTEGER REFERENCES runners(id) ON DELETE SET NULL;

-- Secret survey answers of a waiting task, encrypted like every secret, until the server or
-- runner that takes the task reads them once.
CREATE TABLE task_secrets (
    task_id     INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    secret      TEXT    NOT NULL
);
