-- When the violation happened (the alert's start), for monthly company scoring by violation month.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS occurred_at timestamptz;
UPDATE cases SET occurred_at = coalesce((body ->> 'occurred_at')::timestamptz, created_at) WHERE occurred_at IS NULL;
CREATE INDEX IF NOT EXISTS cases_occurred ON cases (occurred_at);
