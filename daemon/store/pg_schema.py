"""The PostgreSQL schema twofad keeps, and its migrations, each applied exactly once.

Migration N takes the schema from version N-1 to N; one that shipped is never edited.
The columns mean what SQLite's do (sqlite.MIGRATIONS).  postgres.py applies them at
connection, under MIGRATION_LOCK, in one transaction.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

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
    # Several devices per account (SQLite's migration 6).  An older twofad still
    # running against this database after it finds the key columns gone fails, and
    # its PAM hook refuses (fail=secure): it never accepts a removed device's key.
    3: """
    CREATE TABLE devices (
        owner         text NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        name          text NOT NULL,
        secret        bytea NOT NULL,
        algorithm     text NOT NULL,
        digits        integer NOT NULL,
        period        integer NOT NULL,
        added_at      double precision NOT NULL,
        confirmed_at  double precision,
        last_step     bigint,
        drift         integer NOT NULL DEFAULT 0,
        totp_window   integer,
        last_used     double precision,
        renews        integer NOT NULL DEFAULT 0,
        PRIMARY KEY (owner, name)
    );
    INSERT INTO devices (owner, name, secret, algorithm, digits, period, added_at,
                         confirmed_at, last_step, drift, totp_window, last_used, renews)
        SELECT name, 'phone', secret, coalesce(algorithm, 'SHA1'), coalesce(digits, 6),
               coalesce(period, 30), coalesce(enrolled_at, created_at),
               coalesce(enrolled_at, created_at), last_step, drift, totp_window,
               last_success, 0
        FROM users WHERE secret IS NOT NULL;
    INSERT INTO devices (owner, name, secret, algorithm, digits, period, added_at,
                         confirmed_at, last_step, drift, totp_window, last_used, renews)
        SELECT name, CASE WHEN secret IS NULL THEN 'phone' ELSE 'phone 2' END,
               pending_secret, coalesce(pending_algorithm, 'SHA1'),
               coalesce(pending_digits, 6), coalesce(pending_period, 30),
               coalesce(pending_since, created_at), NULL, NULL, 0, NULL, NULL,
               CASE WHEN secret IS NULL THEN 0 ELSE 1 END
        FROM users WHERE pending_secret IS NOT NULL;
    ALTER TABLE users DROP COLUMN secret,
        DROP COLUMN algorithm,
        DROP COLUMN digits,
        DROP COLUMN period,
        DROP COLUMN pending_secret,
        DROP COLUMN pending_algorithm,
        DROP COLUMN pending_digits,
        DROP COLUMN pending_period,
        DROP COLUMN pending_since,
        DROP COLUMN last_step,
        DROP COLUMN drift,
        DROP COLUMN totp_window;
    """,
    # Codes by email (as SQLite's 7).
    4: """
    ALTER TABLE users ADD COLUMN email text,
        ADD COLUMN email_pending text,
        ADD COLUMN email_pending_digest bytea,
        ADD COLUMN email_pending_expires double precision,
        ADD COLUMN email_code_digest bytea,
        ADD COLUMN email_code_expires double precision,
        ADD COLUMN email_sends text;
    """,
}

# The advisory lock the migrations take: "twofad" and 1, one key for every twofad.
MIGRATION_LOCK = 0x7477_6F66_6164_0001
