-- A project's task list version: bumped, in the same transaction, by every write that changes
-- what a task list of the project shows (the columns of `tasks`, the template's name, type, app
-- and playbook, the user's name). A server that keeps a serialized page compares the version it
-- was read at with this one, so servers sharing one database never serve a page another one
-- made stale. Kept in step with ../sqlite/0020_task_list_version.sql.
--
-- Inserts and deletes bump once per statement and project (a retention sweep or a seed of a
-- million rows is one update of each project's row, not a million); updates, one task at a
-- time in practice, once per row and only for the columns a list shows.
ALTER TABLE projects ADD COLUMN task_list_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION tasks_inserted_list_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1
     WHERE id IN (SELECT DISTINCT project_id FROM new_tasks);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_insert_list_version AFTER INSERT ON tasks
REFERENCING NEW TABLE AS new_tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasks_inserted_list_version();

CREATE FUNCTION tasks_deleted_list_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1
     WHERE id IN (SELECT DISTINCT project_id FROM old_tasks);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_delete_list_version AFTER DELETE ON tasks
REFERENCING OLD TABLE AS old_tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasks_deleted_list_version();

-- A row's project (old and new) of `tasks` or `templates`.
CREATE FUNCTION row_changed_list_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1
     WHERE id IN (OLD.project_id, NEW.project_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_update_list_version AFTER UPDATE OF
    id, template_id, project_id, status, user_id, playbook, environment, arguments, git_branch,
    commit_hash, commit_message, message, inventory_id, build_task_id, version, params,
    integration_id, schedule_id, created, start, "end" ON tasks
FOR EACH ROW EXECUTE FUNCTION row_changed_list_version();

CREATE TRIGGER templates_update_list_version AFTER UPDATE OF
    project_id, name, type, app, playbook ON templates
FOR EACH ROW EXECUTE FUNCTION row_changed_list_version();

-- A user's name shows in the tasks they started, in any project: renames are rare, so every
-- project's version moves.
CREATE FUNCTION user_changed_list_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_update_list_version AFTER UPDATE OF name ON users
FOR EACH ROW EXECUTE FUNCTION user_changed_list_version();

CREATE TRIGGER users_delete_list_version AFTER DELETE ON users
FOR EACH ROW EXECUTE FUNCTION user_changed_list_version();
