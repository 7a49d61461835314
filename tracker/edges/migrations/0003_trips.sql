-- Trips and electronic manifests (电子联单): one row per muck-truck / mixer trip the engine decided.
CREATE TABLE IF NOT EXISTS trips (
    trip_id        text PRIMARY KEY,        -- stable: hash of (vehicle, trip start)
    vehicle_id     text NOT NULL,
    vehicle_kind   text NOT NULL,
    company        text,
    start_ts       timestamptz NOT NULL,    -- left the origin loaded
    end_ts         timestamptz,             -- unloaded / dumped / failed
    origin_fence   text,
    dest_fence     text,
    doc_id         text,                    -- permit or delivery order
    outcome        text NOT NULL,           -- completed | failed | open …
    load_source    text NOT NULL,           -- sensor | inferred
    local_day      integer NOT NULL,        -- local calendar day (days since epoch, city time)
    decided_ts     timestamptz NOT NULL,
    backfilled     boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS trips_vehicle_start ON trips (vehicle_id, start_ts);
CREATE INDEX IF NOT EXISTS trips_day ON trips (local_day);
CREATE INDEX IF NOT EXISTS trips_origin ON trips (origin_fence, local_day);
CREATE INDEX IF NOT EXISTS trips_dest ON trips (dest_fence, local_day);
