-- The catalog advisor's answers (docs/catalog.md): per rollout (its order, `step` = '') and per
-- failed step (its diagnosis, `step` = the step's id). Kept column-for-column in step with
-- ../postgres/0008_catalog_advice.sql.
CREATE TABLE catalog_advice (
    rollout_id  INTEGER NOT NULL REFERENCES catalog_rollouts(id) ON DELETE CASCADE,
    step        TEXT    NOT NULL,
    advice      TEXT    NOT NULL,
    created     TEXT    NOT NULL,
    PRIMARY KEY (rollout_id, step)
);
