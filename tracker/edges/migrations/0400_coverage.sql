-- Sanitation coverage (tracker.coverage): a day's computed report, recomputable from history and plans.
-- Work plans and collection schedules themselves are reference documents (reference_docs, doc_type
-- 'plan' / 'schedule'), versioned and audited like permits.
CREATE TABLE IF NOT EXISTS coverage_days (
    day          date        PRIMARY KEY,        -- local date of the plan windows
    computed_at  timestamptz NOT NULL DEFAULT now(),
    summary      jsonb       NOT NULL,            -- DayReport.summary()
    meta         jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- segment geometry, point positions, parameters
    computed_by  text
);

-- The report's tables as Parquet (segments, points, vehicles, hexes): read whole by the API and the CLI.
CREATE TABLE IF NOT EXISTS coverage_parts (
    day   date  NOT NULL REFERENCES coverage_days (day) ON DELETE CASCADE,
    part  text  NOT NULL,
    data  bytea NOT NULL,
    PRIMARY KEY (day, part)
);
