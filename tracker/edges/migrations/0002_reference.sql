-- Reference documents besides fences: permits, delivery orders, work plans, collection schedules.
-- Stored as JSON documents (their msgspec structs), versioned: an edit inserts a new version.
CREATE TABLE IF NOT EXISTS reference_docs (
    doc_type    text NOT NULL,          -- permit | order | plan | schedule
    doc_id      text NOT NULL,
    version     integer NOT NULL,
    body        jsonb NOT NULL,
    valid_from  date,
    valid_to    date,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    PRIMARY KEY (doc_type, doc_id, version)
);
