-- Changes to fences, permits/orders/plans (and any table given the same trigger) are captured by the
-- database itself, in the writer's transaction, so no code path can change them without a trace:
-- the trigger queues a row in audit_pending, and tracker.edges.audit chains queued rows into audit_log
-- (on every append, on every web-app scan, and with `fleetwatch audit drain`). Queued rows cannot be
-- deleted or edited; only their `appended_seq` is set, once.

CREATE TABLE IF NOT EXISTS audit_pending (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor         text NOT NULL,
    action        text NOT NULL,
    object_type   text NOT NULL,
    object_id     text NOT NULL,
    details       jsonb NOT NULL,
    appended_seq  bigint
);
CREATE INDEX IF NOT EXISTS audit_pending_todo ON audit_pending (id) WHERE appended_seq IS NULL;

CREATE OR REPLACE FUNCTION fw_audit_pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.appended_seq IS NULL AND NEW.appended_seq IS NOT NULL
       AND (to_jsonb(NEW) - 'appended_seq') = (to_jsonb(OLD) - 'appended_seq') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on audit_pending is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS audit_pending_guard ON audit_pending;
CREATE TRIGGER audit_pending_guard BEFORE UPDATE OR DELETE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION fw_audit_pending_guard();
DROP TRIGGER IF EXISTS audit_pending_no_truncate ON audit_pending;
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION fw_reject_change();

-- fw_capture_change(object_type, id_column, actor_column, big_column)
--   object_type: a literal, or '@col' to take it from a column (reference_docs.doc_type → permit/order/plan);
--   actor: `SET LOCAL fleetwatch.actor = '…'` when the writer sets it, else the row's actor column, else the
--   database user; big_column (geometry, body) is recorded as its md5 — the table itself keeps the content.
CREATE OR REPLACE FUNCTION fw_capture_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cur jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    r jsonb := cur;
    otype text;
    who text;
    verb text := lower(TG_OP);
BEGIN
    otype := CASE WHEN left(TG_ARGV[0], 1) = '@' THEN cur ->> substr(TG_ARGV[0], 2) ELSE TG_ARGV[0] END;
    who := coalesce(nullif(current_setting('fleetwatch.actor', true), ''), cur ->> TG_ARGV[2], session_user);
    IF TG_OP = 'INSERT' THEN
        verb := 'save';
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb) INTO r
        FROM jsonb_each(to_jsonb(NEW)) n
        WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key OR n.key IN ('version', TG_ARGV[1]);
        IF (r ->> 'recorded_to') IS NOT NULL THEN
            verb := 'close';
        END IF;
    END IF;
    IF TG_ARGV[3] <> '' AND r ? TG_ARGV[3] THEN
        r := (r - TG_ARGV[3]) || jsonb_build_object(TG_ARGV[3] || '_md5', md5((r -> TG_ARGV[3])::text));
    END IF;
    INSERT INTO audit_pending (actor, action, object_type, object_id, details)
    VALUES (who, otype || '.' || verb, otype, coalesce(cur ->> TG_ARGV[1], '?'),
            jsonb_build_object('table', TG_TABLE_NAME, 'row', r));
    RETURN NULL;
END $$;

-- Put a table under capture (idempotent). Other areas can call it from their own migrations for their
-- tables (work plans, schedules …): SELECT fw_audit_table('plans', 'plan', 'plan_id', 'created_by', 'body');
CREATE OR REPLACE FUNCTION fw_audit_table(tbl regclass, object_type text, id_column text,
                                          actor_column text DEFAULT '', big_column text DEFAULT '')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE trg text := 'fw_audit_' || replace(tbl::text, '.', '_');
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trg, tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
                   'EXECUTE FUNCTION fw_capture_change(%L, %L, %L, %L)',
                   trg, tbl, object_type, id_column, actor_column, big_column);
END $$;

DO $$
BEGIN
    IF to_regclass('fence_versions') IS NOT NULL THEN
        PERFORM fw_audit_table('fence_versions', 'fence', 'fence_id', 'actor', 'geometry');
    END IF;
    IF to_regclass('reference_docs') IS NOT NULL THEN
        PERFORM fw_audit_table('reference_docs', '@doc_type', 'doc_id', 'created_by', 'body');
    END IF;
END $$;
