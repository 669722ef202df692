-- ferry state store, initial schema (SQLite dialect; keep in step with ../postgres).
-- Times are unix milliseconds (UTC) in *_ms columns; JSON documents are TEXT.
-- IF NOT EXISTS: two processes opening a fresh file at once must not trip over each other.

CREATE TABLE IF NOT EXISTS builds (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    app           TEXT    NOT NULL,
    env           TEXT,
    tag           TEXT    NOT NULL,
    image_id      TEXT    NOT NULL,
    git_sha       TEXT,
    size_bytes    INTEGER NOT NULL,
    layers        INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    cache_reused  INTEGER NOT NULL,
    cache_total   INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS builds_by_app ON builds (app, id);

-- One row per app+env: the last revision number handed out. Incremented with an
-- upsert so concurrent allocations serialise on the row.
CREATE TABLE IF NOT EXISTS revision_counters (
    app         TEXT    NOT NULL,
    env         TEXT    NOT NULL,
    last_number INTEGER NOT NULL,
    PRIMARY KEY (app, env)
);

CREATE TABLE IF NOT EXISTS revisions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    app           TEXT    NOT NULL,
    env           TEXT    NOT NULL,
    number        INTEGER NOT NULL,
    image         TEXT    NOT NULL,
    image_id      TEXT,
    image_digest  TEXT,
    git_sha       TEXT,
    spec_json     TEXT    NOT NULL,
    spec_hash     TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    reason        TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (app, env, number)
);

CREATE TABLE IF NOT EXISTS rollouts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    app            TEXT    NOT NULL,
    env            TEXT    NOT NULL,
    from_revision  INTEGER,
    to_revision    INTEGER NOT NULL,
    strategy       TEXT    NOT NULL,
    state_json     TEXT    NOT NULL,
    phase          TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    outcome        TEXT,
    reason         TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_by_app_env ON rollouts (app, env, id);
CREATE INDEX IF NOT EXISTS rollouts_unfinished ON rollouts (finished_at_ms);

CREATE TABLE IF NOT EXISTS rollout_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id   INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    at_ms        INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    message_json TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS rollout_events_by_rollout ON rollout_events (rollout_id, id);

CREATE TABLE IF NOT EXISTS analysis_verdicts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id   INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    verdict_json TEXT    NOT NULL,
    at_ms        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS analysis_verdicts_by_rollout ON analysis_verdicts (rollout_id, id);

CREATE TABLE IF NOT EXISTS locks (
    app            TEXT    NOT NULL,
    env            TEXT    NOT NULL,
    holder         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    acquired_at_ms INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (app, env)
);

CREATE TABLE IF NOT EXISTS audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    app         TEXT,
    env         TEXT,
    detail_json TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_by_app ON audit_log (app, id);

-- Values are XChaCha20-Poly1305 ciphertexts; the key never enters the database.
CREATE TABLE IF NOT EXISTS secrets (
    app           TEXT    NOT NULL,
    env           TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    ciphertext    BLOB    NOT NULL,
    nonce         BLOB    NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (app, env, name)
);
