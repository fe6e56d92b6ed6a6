-- A catalog step's environment (the service's `environment` and ralf's RALF_* variables, a JSON
-- object), recorded with the step's start in the same row as its task's id, so the task's job
-- reads it with its other inputs instead of deriving it from the rollout's whole plan. NULL
-- for steps started before this column existed (their environment comes from the plan).
ALTER TABLE catalog_rollout_events ADD COLUMN environment TEXT;
