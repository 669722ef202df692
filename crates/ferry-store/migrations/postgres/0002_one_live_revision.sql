-- At most one live revision per app+env: the database enforces what the store keeps.
CREATE UNIQUE INDEX IF NOT EXISTS revisions_one_live ON revisions (app, env) WHERE status = 'live';
