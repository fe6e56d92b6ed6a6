-- A project's task list version: bumped, in the same transaction, by every write that changes
-- what a task list of the project shows (the columns of `tasks`, the template's name, type, app
-- and playbook, the user's name). A server that keeps a serialized page compares the version it
-- was read at with this one, so servers sharing one database never serve a page another one
-- made stale. Kept in step with ../postgres/0020_task_list_version.sql.
ALTER TABLE projects ADD COLUMN task_list_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER tasks_insert_list_version AFTER INSERT ON tasks
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1 WHERE id = NEW.project_id;
END;

CREATE TRIGGER tasks_update_list_version AFTER UPDATE OF
    id, template_id, project_id, status, user_id, playbook, environment, arguments, git_branch,
    commit_hash, commit_message, message, inventory_id, build_task_id, version, params,
    integration_id, schedule_id, created, start, "end" ON tasks
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1
     WHERE id IN (OLD.project_id, NEW.project_id);
END;

CREATE TRIGGER tasks_delete_list_version AFTER DELETE ON tasks
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1 WHERE id = OLD.project_id;
END;

CREATE TRIGGER templates_update_list_version AFTER UPDATE OF
    project_id, name, type, app, playbook ON templates
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1
     WHERE id IN (OLD.project_id, NEW.project_id);
END;

-- A user's name shows in the tasks they started, in any project: renames are rare, so every
-- project's version moves.
CREATE TRIGGER users_update_list_version AFTER UPDATE OF name ON users
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1;
END;

CREATE TRIGGER users_delete_list_version AFTER DELETE ON users
BEGIN
    UPDATE projects SET task_list_version = task_list_version + 1;
END;
