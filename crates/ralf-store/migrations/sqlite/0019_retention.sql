-- Retention: how many finished tasks, or how many days of them, a project or one template keeps.
-- Kept column-for-column in step with ../postgres/0019_retention.sql.
--
-- One row per project (template_id NULL: the project's default for every template without a
-- row of its own) or per template. keep_tasks: the newest N finished tasks of each template
-- are kept; keep_days: finished tasks created in the last N days are kept; NULL: no limit of
-- that kind. The daily sweep deletes the finished tasks (with their output) that a limit
-- excludes.
CREATE TABLE retention_policies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    template_id INTEGER REFERENCES templates(id) ON DELETE CASCADE,
    keep_tasks  INTEGER,
    keep_days   INTEGER
);
CREATE UNIQUE INDEX retention_policies_scope ON retention_policies(project_id, COALESCE(template_id, 0));
