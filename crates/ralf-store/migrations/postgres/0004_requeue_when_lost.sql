-- A template may say its tasks are safe to start again: a task whose runner or server is lost
-- goes back to the queue instead of ending in error.
ALTER TABLE templates ADD COLUMN requeue_when_lost BOOLEAN NOT NULL DEFAULT FALSE;
