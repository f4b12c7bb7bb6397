-- Accounts of the interface: who may log in with which role, every login attempt (for the rate limit),
-- and an append-only audit trail of every change with its author.
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    disabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS login_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_name TEXT NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    succeeded BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_recent ON login_attempts (user_name, attempted_at DESC);

CREATE TABLE IF NOT EXISTS audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    detail JSONB
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at DESC);
