-- ralf's schema on SQLite. Kept column-for-column in step with ../postgres/0001_init.sql:
-- the same names and meanings, only the types differ (INTEGER/TEXT here, BIGINT/TIMESTAMPTZ there).
-- Times are RFC 3339 text in UTC.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    username    TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    email       TEXT    NOT NULL UNIQUE,
    password    TEXT    NOT NULL,            -- argon2 or imported bcrypt hash; '' for external users
    admin       BOOLEAN NOT NULL DEFAULT FALSE,
    external    BOOLEAN NOT NULL DEFAULT FALSE,
    alert       BOOLEAN NOT NULL DEFAULT FALSE,
    created     TEXT    NOT NULL
);

CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret      TEXT    NOT NULL UNIQUE,     -- sha256 of the cookie value
    created     TEXT    NOT NULL,
    last_active TEXT    NOT NULL,
    expired     BOOLEAN NOT NULL DEFAULT FALSE,
    ip          TEXT    NOT NULL DEFAULT '',
    user_agent  TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE api_tokens (
    id          TEXT    PRIMARY KEY,         -- the token itself, as Semaphore exposes it
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL DEFAULT '',
    created     TEXT    NOT NULL,
    expired     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE projects (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    created            TEXT    NOT NULL,
    alert              BOOLEAN NOT NULL DEFAULT FALSE,
    alert_chat         TEXT,
    max_parallel_tasks INTEGER NOT NULL DEFAULT 0,
    type               TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE project_users (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT    NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_users_user ON project_users(user_id);

-- Access keys and environment secrets. `secret` holds the encrypted material (Semaphore's format).
CREATE TABLE access_keys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    type           TEXT    NOT NULL,         -- none | ssh | login_password | string
    secret         TEXT,
    environment_id INTEGER,                  -- set for environment secrets (type string)
    owner          TEXT    NOT NULL DEFAULT '' -- '' for project keys; 'env' or 'var' for environment secrets
);
CREATE INDEX access_keys_project ON access_keys(project_id);

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    git_url     TEXT    NOT NULL,
    git_branch  TEXT    NOT NULL DEFAULT '',
    ssh_key_id  INTEGER REFERENCES access_keys(id)
);
CREATE INDEX repositories_project ON repositories(project_id);

CREATE TABLE inventories (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    type          TEXT    NOT NULL,          -- static | static-yaml | file | terraform-workspace | tofu-workspace
    inventory     TEXT    NOT NULL DEFAULT '',
    ssh_key_id    INTEGER REFERENCES access_keys(id),
    become_key_id INTEGER REFERENCES access_keys(id),
    repository_id INTEGER REFERENCES repositories(id)
);
CREATE INDEX inventories_project ON inventories(project_id);

CREATE TABLE environments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    password    TEXT,
    json        TEXT    NOT NULL DEFAULT '{}',
    env         TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX environments_project ON environments(project_id);

CREATE TABLE views (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    position     INTEGER NOT NULL DEFAULT 0,
    hidden       BOOLEAN NOT NULL DEFAULT FALSE,
    type         TEXT    NOT NULL DEFAULT '',
    sort_column  TEXT,
    sort_reverse BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX views_project ON views(project_id);

CREATE TABLE templates (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id                  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name                        TEXT    NOT NULL,
    app                         TEXT    NOT NULL DEFAULT 'ansible',
    type                        TEXT    NOT NULL DEFAULT '',
    playbook                    TEXT    NOT NULL DEFAULT '',
    description                 TEXT    NOT NULL DEFAULT '',
    arguments                   TEXT,
    working_directory           TEXT,
    git_branch                  TEXT,
    limit_hosts                 TEXT    NOT NULL DEFAULT '',
    inventory_id                INTEGER REFERENCES inventories(id),
    repository_id               INTEGER REFERENCES repositories(id),
    environment_id              INTEGER REFERENCES environments(id),
    view_id                     INTEGER REFERENCES views(id) ON DELETE SET NULL,
    build_template_id           INTEGER REFERENCES templates(id),
    allow_override_args_in_task BOOLEAN NOT NULL DEFAULT FALSE,
    allow_override_branch_in_task BOOLEAN NOT NULL DEFAULT FALSE,
    allow_parallel_tasks        BOOLEAN NOT NULL DEFAULT FALSE,
    suppress_success_alerts     BOOLEAN NOT NULL DEFAULT FALSE,
    suppress_error_alerts       BOOLEAN NOT NULL DEFAULT FALSE,
    autorun                     BOOLEAN NOT NULL DEFAULT FALSE,
    start_version               TEXT,
    survey_vars                 TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    task_params                 TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    environment_ids             TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    executor_image              TEXT    NOT NULL DEFAULT '',
    timeout_secs                INTEGER NOT NULL DEFAULT 0,
    runner_tags                 TEXT    NOT NULL DEFAULT '[]'   -- JSON array
);
CREATE INDEX templates_project ON templates(project_id);

CREATE TABLE template_vaults (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id  INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL DEFAULT '',
    type         TEXT    NOT NULL DEFAULT 'password',
    vault_key_id INTEGER REFERENCES access_keys(id),
    script       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX template_vaults_template ON template_vaults(template_id);

CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    template_id     INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    status          TEXT    NOT NULL,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    playbook        TEXT    NOT NULL DEFAULT '',
    environment     TEXT    NOT NULL DEFAULT '',
    arguments       TEXT,
    git_branch      TEXT,
    commit_hash     TEXT,
    commit_message  TEXT    NOT NULL DEFAULT '',
    message         TEXT    NOT NULL DEFAULT '',
    inventory_id    INTEGER REFERENCES inventories(id) ON DELETE SET NULL,
    build_task_id   INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    version         TEXT,
    params          TEXT    NOT NULL DEFAULT '{}',  -- JSON: ansible/terraform task params
    integration_id  INTEGER,
    schedule_id     INTEGER,
    created         TEXT    NOT NULL,
    start           TEXT,
    "end"           TEXT
);
CREATE INDEX tasks_project_id ON tasks(project_id, id);
CREATE INDEX tasks_template_id ON tasks(template_id, id);
-- Status filters and sorts of one project's task list.
CREATE INDEX tasks_project_status ON tasks(project_id, status, id);
-- Deleting a task clears build_task_id in the tasks built from it.
CREATE INDEX tasks_build_task ON tasks(build_task_id);
CREATE INDEX tasks_status ON tasks(status) WHERE status IN ('waiting', 'starting', 'running', 'stopping', 'waiting_confirmation', 'confirmed');

-- A task's output in chunks, one row per batch the writer stores (not one per line, which is
-- what makes Semaphore's output table grow and its log writes slow): lines `first_line ..
-- first_line + line_count` (0-based) of the task, `output` holding them joined by newlines,
-- `offsets` the time of each line in microseconds after `time`, comma-separated.
CREATE TABLE task_output (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    first_line  INTEGER NOT NULL,
    line_count  INTEGER NOT NULL,
    time        TEXT NOT NULL,
    offsets     TEXT    NOT NULL,
    output      TEXT    NOT NULL
);
CREATE UNIQUE INDEX task_output_task ON task_output(task_id, first_line);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    user_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    object_id    INTEGER,
    object_type  TEXT    NOT NULL DEFAULT '',
    description  TEXT    NOT NULL DEFAULT '',
    created      TEXT    NOT NULL
);
CREATE INDEX events_project ON events(project_id, id);

CREATE TABLE options (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE user_options (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key     TEXT    NOT NULL,
    value   TEXT    NOT NULL,
    PRIMARY KEY (user_id, key)
);
