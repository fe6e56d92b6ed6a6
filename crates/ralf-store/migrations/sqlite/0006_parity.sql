-- Semaphore 2.16 parity. Kept column-for-column in step with ../postgres/0006_parity.sql.
--
-- Clients know an API token by its id, which in Semaphore is the token itself. Tokens are
-- still looked up by digest (`id`); the listable id is kept in `sealed_id`, encrypted with the
-- access key (NULL for tokens made before, or without an access key: listed by digest).
ALTER TABLE api_tokens ADD COLUMN sealed_id TEXT;

-- Host configs: which ssh key reaches a host (`type` 'host') or a git URL prefix ('url').
CREATE TABLE host_configs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    type        TEXT    NOT NULL DEFAULT 'host',
    host        TEXT    NOT NULL DEFAULT '',
    ssh_key_id  INTEGER REFERENCES access_keys(id) ON DELETE SET NULL
);
CREATE INDEX host_configs_project ON host_configs(project_id, id);
