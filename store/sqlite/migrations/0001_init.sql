-- Initial schema. Times are INTEGER unix nanoseconds in UTC, so ordering by a
-- time column is ordering by an integer and nanoseconds survive the round trip.

-- orders: the current state of every order. Keyset pagination walks
-- (created_at DESC, id DESC), alone or behind a user_id or status filter.
CREATE TABLE orders (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_id            TEXT    NOT NULL,
    amount_minor       INTEGER NOT NULL,
    currency           TEXT    NOT NULL,
    region             TEXT    NOT NULL,
    items              TEXT    NOT NULL, -- JSON array of {"sku","qty"}
    internal           INTEGER NOT NULL DEFAULT 0,
    ip                 TEXT    NOT NULL DEFAULT '',
    device_id          TEXT    NOT NULL DEFAULT '',
    status             TEXT    NOT NULL,
    version            INTEGER NOT NULL,
    risk_decision      TEXT,             -- the risk columns are NULL until a verdict is applied
    risk_score         REAL,
    risk_model_version TEXT,
    risk_decided_at    INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_by_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_by_status ON orders (status, created_at DESC, id DESC);

-- outbox: domain events written in the same transaction as the change they
-- report. seq is AUTOINCREMENT so it is never reused, even after old rows are
-- pruned: a bus keeps one cursor per consumer group (the last seq it has
-- acknowledged) and reads "WHERE seq > cursor ORDER BY seq". Rows are committed
-- by a single writer, so seq also grows with commit order. Delivery counts,
-- cursors and dead letters belong to the bus, in tables of its own.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    type       TEXT    NOT NULL,
    order_id   TEXT    NOT NULL,
    payload    BLOB    NOT NULL,          -- JSON
    headers    TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings (trace context)
    created_at INTEGER NOT NULL
) STRICT;

-- inbox: every risk callback recorded, one per (order_id, event_type), the
-- callback's idempotency key. seq is arrival order. outcome and applied_at stay
-- NULL until the callback is applied; rows are kept afterwards for audit.
CREATE TABLE inbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id      TEXT    NOT NULL REFERENCES orders (id),
    event_type    TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    decision      TEXT    NOT NULL,
    score         REAL    NOT NULL,
    model_version TEXT    NOT NULL,
    decided_at    INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    outcome       TEXT,
    applied_at    INTEGER,
    UNIQUE (order_id, event_type)
) STRICT;
-- The sweeper's work list: a partial index holds only what is still to apply.
CREATE INDEX inbox_unapplied ON inbox (order_id, seq) WHERE outcome IS NULL;

-- transitions: every status change, for an order's history.
-- cause is an event type (risk.decided, risk.reviewed) or a client action.
CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    TEXT    NOT NULL REFERENCES orders (id),
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    cause       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    at          INTEGER NOT NULL
) STRICT;
CREATE INDEX transitions_by_order ON transitions (order_id, id);

-- idempotency_keys: a client's Idempotency-Key with the hash of its request
-- and the order as first answered (JSON), so a replay returns that answer.
CREATE TABLE idempotency_keys (
    key          TEXT    NOT NULL PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    order_id     TEXT    NOT NULL REFERENCES orders (id),
    response     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
