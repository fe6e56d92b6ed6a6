-- A catalog's schedule: a cron pattern (5 fields) at which a rollout of every service not yet
-- deployed starts, and when it fires next (NULL: no schedule). Servers sharing the database
-- claim a firing by moving `schedule_next_run` on with a compare-and-set, as schedules do.
ALTER TABLE catalog_settings ADD COLUMN schedule TEXT;
ALTER TABLE catalog_settings ADD COLUMN schedule_next_run TEXT;
