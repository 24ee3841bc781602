-- The risk engine's tables. In distributed mode its verdicts live in
-- PostgreSQL, never only in Redis, which may lose its data.

-- risk_decisions: the risk engine's verdicts, one per (order_id, event_type),
-- stored before they are sent: the first one wins, so a redelivered event
-- resends the same verdict. shadow_* is the other model version's verdict,
-- kept to compare versions and never sent. No foreign key to orders: the
-- risk engine may run against another database than the order service.
CREATE TABLE risk_decisions (
    order_id       TEXT             NOT NULL,
    event_type     TEXT             NOT NULL,
    user_id        TEXT             NOT NULL,
    event_id       TEXT             NOT NULL,
    decision       TEXT             NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    model_version  TEXT             NOT NULL,
    shadow_version TEXT             NOT NULL DEFAULT '',
    shadow_score   DOUBLE PRECISION NOT NULL DEFAULT 0,
    decided_at     BIGINT           NOT NULL,
    PRIMARY KEY (order_id, event_type)
);
CREATE INDEX risk_decisions_by_time ON risk_decisions (event_type, decided_at, order_id);

-- risk_labels: ground truth per order (a chargeback, a confirmed good order);
-- the last label wins. No foreign key: a label may arrive before the decision.
CREATE TABLE risk_labels (
    order_id    TEXT    NOT NULL PRIMARY KEY,
    fraud       BOOLEAN NOT NULL,
    labelled_at BIGINT  NOT NULL
);
