-- Initial schema. Times are BIGINT unix nanoseconds in UTC: timestamptz keeps
-- microseconds only, and the API promises nanoseconds. Only SQL that
-- Postgres-compatible distributed engines (CockroachDB, YugabyteDB) also
-- accept: no triggers, no stored procedures, no LISTEN/NOTIFY.

-- orders: the current state of every order. Keyset pagination walks
-- (created_at DESC, id DESC), alone or behind a user_id or status filter.
CREATE TABLE orders (
    id                 TEXT             NOT NULL PRIMARY KEY,
    user_id            TEXT             NOT NULL,
    amount_minor       BIGINT           NOT NULL,
    currency           TEXT             NOT NULL,
    region             TEXT             NOT NULL,
    items              JSONB            NOT NULL, -- array of {"sku","qty"}
    internal           BOOLEAN          NOT NULL DEFAULT FALSE,
    ip                 TEXT             NOT NULL DEFAULT '',
    device_id          TEXT             NOT NULL DEFAULT '',
    status             TEXT             NOT NULL,
    version            BIGINT           NOT NULL,
    risk_decision      TEXT,            -- the risk columns are NULL until a verdict is applied
    risk_score         DOUBLE PRECISION,
    risk_model_version TEXT,
    risk_decided_at    BIGINT,
    created_at         BIGINT           NOT NULL,
    updated_at         BIGINT           NOT NULL
);
CREATE INDEX orders_by_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_by_status ON orders (status, created_at DESC, id DESC);

-- outbox: domain events written in the same transaction as the change they
-- report. seq comes from a sequence, so with concurrent transactions seq
-- order is NOT commit order: a row with a lower seq can become visible after
-- one with a higher seq. A reader must therefore not keep a "last seq" cursor;
-- the relay reads what is still unpublished (published_at IS NULL) instead,
-- and marks what it copied, under its fencing token.
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT      NOT NULL UNIQUE,
    type         TEXT      NOT NULL,
    order_id     TEXT      NOT NULL,
    payload      BYTEA     NOT NULL,             -- JSON, kept byte for byte
    headers      JSONB     NOT NULL DEFAULT '{}', -- object of strings (trace context)
    created_at   BIGINT    NOT NULL,
    published_at BIGINT                           -- NULL until the relay copied it
);
-- The relay's work list: a partial index holds only what is still to publish.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- fencing: the newest fencing token seen per leader role. A write made under a
-- lock carries the lease's token and is refused when an older one arrives, so
-- a relay that lost its lease (a GC pause, a partition) cannot write after its
-- successor did.
CREATE TABLE fencing (
    name  TEXT   NOT NULL PRIMARY KEY,
    token BIGINT NOT NULL
);
INSERT INTO fencing (name, token) VALUES ('outbox-relay', 0);

-- inbox: every risk callback recorded, one per (order_id, event_type), the
-- callback's idempotency key. seq is arrival order (among callbacks of one
-- order, which are applied under the order's row lock). outcome and applied_at
-- stay NULL until the callback is applied; rows are kept for audit.
CREATE TABLE inbox (
    seq           BIGSERIAL        PRIMARY KEY,
    order_id      TEXT             NOT NULL REFERENCES orders (id),
    event_type    TEXT             NOT NULL,
    event_id      TEXT             NOT NULL,
    decision      TEXT             NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    model_version TEXT             NOT NULL,
    decided_at    BIGINT           NOT NULL,
    received_at   BIGINT           NOT NULL,
    outcome       TEXT,
    applied_at    BIGINT,
    UNIQUE (order_id, event_type)
);
-- The sweeper's work list: a partial index holds only what is still to apply.
CREATE INDEX inbox_unapplied ON inbox (order_id, seq) WHERE outcome IS NULL;

-- transitions: every status change, for an order's history.
-- cause is an event type (risk.decided, risk.reviewed) or a client action.
CREATE TABLE transitions (
    id          BIGSERIAL PRIMARY KEY,
    order_id    TEXT      NOT NULL REFERENCES orders (id),
    from_status TEXT      NOT NULL,
    to_status   TEXT      NOT NULL,
    cause       TEXT      NOT NULL,
    version     BIGINT    NOT NULL,
    at          BIGINT    NOT NULL
);
CREATE INDEX transitions_by_order ON transitions (order_id, id);

-- idempotency_keys: a client's Idempotency-Key with the hash of its request
-- and the order as first answered (JSON), so a replay returns that answer.
CREATE TABLE idempotency_keys (
    key          TEXT   NOT NULL PRIMARY KEY,
    request_hash TEXT   NOT NULL,
    order_id     TEXT   NOT NULL REFERENCES orders (id),
    response     TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
