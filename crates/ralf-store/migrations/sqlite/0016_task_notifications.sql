-- Notifications owed for a task's end (docs/notifications.md): one row per task and notifiable
-- status, inserted in the statement batch that stores the status, deleted once every channel
-- took the message or gave up. Servers sharing the database claim a due row by moving
-- `next_attempt` (Unix milliseconds) on with a compare-and-set, so one server sends it.
-- `channels` (JSON list) names the channels still owed after a partial failure; NULL: all.
-- Kept column-for-column in step with ../postgres/0016_task_notifications.sql.
CREATE TABLE task_notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    channels     TEXT,
    UNIQUE (task_id, status)
);
CREATE INDEX task_notifications_due ON task_notifications(next_attempt);
