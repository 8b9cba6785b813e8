-- +migrate Up
-- Per-tenant request counts, one row per tenant and minute, added to by
-- every replica's flusher (usage package): requests, answers with an
-- error, and a latency histogram (fixed bucket bounds, see
-- usage.bucketBounds) that sums across replicas for the p95.
CREATE TABLE tenant_usage (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    minute          timestamptz NOT NULL,
    requests        integer     NOT NULL,
    errors          integer     NOT NULL,
    latency_buckets integer[]   NOT NULL,
    last_request_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, minute)
);
CREATE INDEX tenant_usage_minute ON tenant_usage (minute);

-- Sampled facts of a tenant database, refreshed when read and older than a
-- minute: its size and its number of users.
CREATE TABLE tenant_samples (
    tenant_id      uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    database_bytes bigint      NOT NULL,
    users          integer     NOT NULL,
    sampled_at     timestamptz NOT NULL
);

-- +migrate Down
DROP TABLE tenant_samples;
DROP TABLE tenant_usage;
