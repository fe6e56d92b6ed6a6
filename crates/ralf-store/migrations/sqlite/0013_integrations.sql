-- Integrations: inbound webhooks that start a template, their matchers, extract values and
-- aliases, and the deliveries seen lately (so a replayed delivery starts nothing twice).
-- Kept column-for-column in step with ../postgres/0013_integrations.sql.
--
-- The secret a delivery is checked with is a key of the project (`auth_secret_id`), kept
-- encrypted in `access_keys` like every key; a key in use by an integration cannot be deleted.
CREATE TABLE integrations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    template_id    INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    auth_method    TEXT    NOT NULL DEFAULT '',  -- '', none, github, bitbucket, token, hmac, basic
    auth_secret_id INTEGER REFERENCES access_keys(id),
    auth_header    TEXT    NOT NULL DEFAULT '',
    searchable     BOOLEAN NOT NULL DEFAULT FALSE,
    task_params    TEXT                          -- JSON object: the task's overrides, or NULL
);
CREATE INDEX integrations_project ON integrations(project_id, id);
CREATE INDEX integrations_template ON integrations(template_id);
CREATE INDEX integrations_secret ON integrations(auth_secret_id);

CREATE TABLE integration_matchers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    name           TEXT NOT NULL DEFAULT '',
    match_type     TEXT NOT NULL,                -- body or header
    method         TEXT NOT NULL,                -- equals, unequals or contains
    body_data_type TEXT NOT NULL DEFAULT 'json', -- json, xml or string
    match_key      TEXT NOT NULL DEFAULT '',
    match_value    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX integration_matchers_integration ON integration_matchers(integration_id, id);

CREATE TABLE integration_extract_values (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    name           TEXT NOT NULL DEFAULT '',
    value_source   TEXT NOT NULL,                -- body or header
    body_data_type TEXT NOT NULL DEFAULT 'json', -- json, xml or string
    value_key      TEXT NOT NULL DEFAULT '',
    variable       TEXT NOT NULL,
    variable_type  TEXT NOT NULL DEFAULT 'environment' -- environment or task
);
CREATE INDEX integration_extract_values_integration ON integration_extract_values(integration_id, id);

-- An alias of the project (integration_id NULL) or of one integration.
CREATE TABLE integration_aliases (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    alias          TEXT NOT NULL UNIQUE,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    integration_id INTEGER REFERENCES integrations(id) ON DELETE CASCADE
);
CREATE INDEX integration_aliases_project ON integration_aliases(project_id, id);

-- Deliveries that started (or were about to start) a task, by the sender's delivery id; rows
-- older than the replay window are removed as new ones come.
CREATE TABLE integration_deliveries (
    integration_id INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    delivery_id    TEXT NOT NULL,
    received       TEXT NOT NULL,
    PRIMARY KEY (integration_id, delivery_id)
);
CREATE INDEX integration_deliveries_received ON integration_deliveries(received);
