-- The catalog's scheduled health check: a cron pattern (5 fields) at which a check (the smoke
-- of every deployed service) starts, and when it fires next (NULL: no such schedule). Claimed
-- by a compare-and-set on check_schedule_next_run, as the deploy schedule is.
ALTER TABLE catalog_settings ADD COLUMN check_schedule TEXT;
ALTER TABLE catalog_settings ADD COLUMN check_schedule_next_run TEXT;
