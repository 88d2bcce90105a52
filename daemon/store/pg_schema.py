"""The PostgreSQL schema twofad keeps, and its migrations, each applied exactly once.

Migration N takes the schema from version N-1 to N; one that shipped is never edited.
The columns mean what SQLite's do (sqlite.MIGRATIONS).  postgres.py applies them at
connection, under MIGRATION_LOCK, in one transaction.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# Migration N takes the schema from version N-1 to N.  Never edit one that shipped.
# The columns mean what SQLite's do (sqlite.MIGRATIONS); "user" is quoted, a reserved word.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE schema_version (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE users (
        name               text PRIMARY KEY,
        version            bigint NOT NULL DEFAULT 0,
        created_at         double precision NOT NULL,
        secret             bytea,
        algorithm          text,
        digits             integer,
        period             integer,
        enrolled_at        double precision,
        pending_secret     bytea,
        pending_algorithm  text,
        pending_digits     integer,
        pending_period     integer,
        pending_since      double precision,
        last_step          bigint,
        drift              integer NOT NULL DEFAULT 0,
        failures           integer NOT NULL DEFAULT 0,
        locked_until       double precision,
        hard_locked        integer NOT NULL DEFAULT 0,
        last_success       double precision,
        last_failure       double precision,
        totp_window        integer,
        strikes            integer NOT NULL DEFAULT 0,
        recent_failures    text
    );
    CREATE TABLE recovery_codes (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        "user"     text NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        digest     bytea NOT NULL,
        created_at double precision NOT NULL,
        used_at    double precision,
        UNIQUE ("user", digest)
    );
    CREATE TABLE meta (
        key   text PRIMARY KEY,
        value bytea NOT NULL
    );
    """,
    # Which host a code was last accepted on (SQLite's migration 5).
    2: """
    ALTER TABLE users ADD COLUMN last_host text;
    """,
}

# The advisory lock the migrations take: "twofad" and 1, one key for every twofad.
MIGRATION_LOCK = 0x7477_6F66_6164_0001
