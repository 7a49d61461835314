-- Fences (geofences.store): every version of every fence, never overwritten.
-- An edit closes the current version (recorded_to) and inserts the next one, so "which version was in
-- force at time T" is one query on [recorded_from, recorded_to). Geometry is GeoJSON, WGS-84.

CREATE TABLE IF NOT EXISTS fence_versions (
    fence_id      text             NOT NULL,
    version       integer          NOT NULL CHECK (version >= 1),
    name          text             NOT NULL,
    kind          text             NOT NULL,
    shape         text             NOT NULL CHECK (shape IN ('polygon', 'circle', 'corridor')),
    geometry      jsonb            NOT NULL,               -- GeoJSON geometry, WGS-84 lon/lat
    radius_m      double precision CHECK (radius_m > 0),
    half_width_m  double precision CHECK (half_width_m > 0),
    company       text,
    district      text,
    valid_from    date,                                    -- inclusive, local date
    valid_to      date,                                    -- inclusive, local date
    windows       jsonb            NOT NULL DEFAULT '[]'::jsonb,  -- [[start_min, end_min], ...] local
    tags          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    recorded_from timestamptz      NOT NULL,
    recorded_to   timestamptz,                             -- NULL: the current version
    actor         text,
    PRIMARY KEY (fence_id, version),
    CHECK (recorded_to IS NULL OR recorded_to >= recorded_from)
);

-- at most one current version per fence
CREATE UNIQUE INDEX IF NOT EXISTS fence_versions_current ON fence_versions (fence_id) WHERE recorded_to IS NULL;
CREATE INDEX IF NOT EXISTS fence_versions_recorded ON fence_versions (recorded_from, recorded_to);

-- History is append-only: a version may only be closed (recorded_to set once), never edited or deleted.
CREATE OR REPLACE FUNCTION fence_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'fence_versions is append-only: cannot delete % v%', OLD.fence_id, OLD.version;
    END IF;
    IF OLD.recorded_to IS NOT NULL OR NEW.recorded_to IS NULL
       OR (to_jsonb(NEW) - 'recorded_to') IS DISTINCT FROM (to_jsonb(OLD) - 'recorded_to') THEN
        RAISE EXCEPTION 'fence_versions is append-only: % v% may only be closed once', OLD.fence_id, OLD.version;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS fence_versions_append_only ON fence_versions;
CREATE TRIGGER fence_versions_append_only BEFORE UPDATE OR DELETE ON fence_versions
    FOR EACH ROW EXECUTE FUNCTION fence_versions_append_only();
