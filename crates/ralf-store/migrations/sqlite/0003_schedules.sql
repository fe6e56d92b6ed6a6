-- Schedules: a template run by a cron pattern or once at `run_at`.
-- Kept column-for-column in step with ../postgres/0003_schedules.sql.
--
-- `next_run` is when the schedule fires next (NULL: never, i.e. inactive or a run_at schedule
-- that fired). Servers sharing the database claim a firing by moving `next_run` on with a
-- compare-and-set (`... WHERE id = $1 AND next_run = <the value they read>`) in the same
-- transaction that inserts the task, so each firing makes exactly one task.
CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    template_id INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL DEFAULT '',
    cron_format TEXT    NOT NULL DEFAULT '',
    type        TEXT    NOT NULL DEFAULT '',   -- '' (cron) or 'run_at'
    run_at      TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    task_params TEXT,                          -- JSON object: the task's overrides, or NULL
    created     TEXT    NOT NULL,
    next_run    TEXT,
    last_fired  TEXT
);
CREATE INDEX schedules_project ON schedules(project_id, id);
CREATE INDEX schedules_template ON schedules(template_id);
CREATE INDEX schedules_due ON schedules(next_run) WHERE active;
