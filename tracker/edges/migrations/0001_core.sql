-- Core tables: vehicles, position history (partitioned by day), alerts.

CREATE TABLE IF NOT EXISTS vehicles (
    vehicle_id    text PRIMARY KEY,
    kind          text NOT NULL,
    company       text,
    district      text,
    plate         text,
    phone         text UNIQUE,          -- JT/T 808 terminal phone number
    vendor_profile text NOT NULL DEFAULT 'default',
    auth_code     text,
    attrs         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Position history: never updated or deleted except by the retention command. Idempotent by (vehicle, ts):
-- writers COPY into a temporary table and INSERT ... ON CONFLICT DO NOTHING, so a redelivered block is
-- stored exactly once.
CREATE TABLE IF NOT EXISTS fixes (
    vehicle_id     text        NOT NULL,
    ts             timestamptz NOT NULL,
    lon            double precision NOT NULL,
    lat            double precision NOT NULL,
    h3             bigint      NOT NULL,   -- H3 cell at the finest resolution (settings.h3.fix_res)
    speed_kmh      real        NOT NULL,
    heading_deg    real        NOT NULL,
    valid          boolean     NOT NULL,
    alarm          bigint      NOT NULL,
    status         bigint      NOT NULL,
    cover_closed   boolean,
    lifting        boolean,
    load           smallint,
    device_on      boolean,
    drum           smallint,
    backfill       boolean     NOT NULL DEFAULT false,
    source         text        NOT NULL,
    received_ts    timestamptz NOT NULL,
    PRIMARY KEY (vehicle_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE IF NOT EXISTS fixes_default PARTITION OF fixes DEFAULT;
CREATE INDEX IF NOT EXISTS fixes_h3_ts ON fixes (h3, ts);

CREATE TABLE IF NOT EXISTS alerts (
    alert_id     text PRIMARY KEY,      -- stable: hash of (rule, vehicle, episode start)
    kind         text NOT NULL,
    vehicle_id   text NOT NULL,
    severity     text NOT NULL DEFAULT 'confirmed',
    start_ts     timestamptz NOT NULL,
    end_ts       timestamptz,
    status       text NOT NULL,         -- open | closed
    lon          double precision,
    lat          double precision,
    place_id     text,
    backfilled   boolean NOT NULL DEFAULT false,
    evidence     jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_vehicle_start ON alerts (vehicle_id, start_ts);
CREATE INDEX IF NOT EXISTS alerts_kind_start ON alerts (kind, start_ts);
