-- fraud_scores partitioned by day (UTC) on scored_at, so that months of scores stay manageable: retention
-- drops a day's partition (no DELETE, no bloat, no long vacuum) and the interface's "newest first"
-- queries read the newest partitions only.
--
-- Uniqueness. A partitioned table's unique keys must contain the partition key, so the primary key is
-- (transaction_id, scored_at), and the sink's INSERT ... ON CONFLICT DO NOTHING stays idempotent only if a
-- redelivered score message brings the same scored_at. It does: the sink no longer stamps scored_at with
-- its own clock, it takes the Kafka timestamp of the score record, which is stored with the record and is
-- the same on every redelivery (a sink that crashed after its INSERT, before committing its offsets,
-- re-reads the very same records). A transaction cannot get two different scored_at: the detector scores
-- exactly once (its transactions commit the score message with its input offsets), so `scoring` holds one
-- committed score message per transaction. The time the sink wrote the row is stored_at.
--
-- No other table refers to fraud_scores by a foreign key (labels may arrive before their score, so
-- fraud_labels never had one): nothing else changes. A label whose score has been dropped by retention
-- stays, like a label that arrived before its score.
--
-- There is no DEFAULT partition: a row for a day without a partition is refused, and the sink creates the
-- partition and writes again (fraud_scores_add_partitions). A DEFAULT partition would accept it silently,
-- and then the day's partition could no longer be created while the DEFAULT partition holds its rows.

CREATE TABLE IF NOT EXISTS fraud_scores_policy (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    retention_days INTEGER NOT NULL CHECK (retention_days >= 1)   -- set by `migrate` from the settings
);
INSERT INTO fraud_scores_policy (retention_days) VALUES (90) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION fraud_scores_partition_name(day DATE) RETURNS TEXT
    LANGUAGE sql IMMUTABLE AS $$ SELECT 'fraud_scores_p' || to_char(day, 'YYYYMMDD') $$;

-- The partitions of the days (UTC) of `scored_at` that have none yet; the number created. Run as its
-- owner (the migrations' role), so that the sink's role, which may only insert, can call it; two sinks
-- creating the same day take turns on an advisory lock.
CREATE OR REPLACE FUNCTION fraud_scores_add_partitions(scored_at TIMESTAMPTZ[]) RETURNS INTEGER
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    day DATE;
    created INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7461303);
    FOR day IN SELECT DISTINCT (t AT TIME ZONE 'UTC')::date FROM unnest(scored_at) AS t WHERE t IS NOT NULL
    LOOP
        IF to_regclass('public.' || fraud_scores_partition_name(day)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE public.%I PARTITION OF public.fraud_scores FOR VALUES FROM (%L) TO (%L)',
                fraud_scores_partition_name(day),
                to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00'
            );
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

-- The periodic job (the sink runs it at start and every hour): partitions for today and the next
-- `ahead` days, the partitions older than the policy's retention dropped (with their days' tally, and
-- their labels' link), and the labels whose score arrived unseen linked. A drop waits at most
-- lock_timeout for the queries reading the table; a drop that timed out is retried at the next run.
CREATE OR REPLACE FUNCTION fraud_scores_maintain(ahead INTEGER DEFAULT 7)
    RETURNS TABLE (created INTEGER, dropped INTEGER)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET lock_timeout = '5s' AS $$
DECLARE
    today DATE := (now() AT TIME ZONE 'UTC')::date;
    partition RECORD;
BEGIN
    created := fraud_scores_add_partitions(ARRAY(
        SELECT generate_series(today::timestamp, (today + least(greatest(ahead, 0), 31))::timestamp,
                               interval '1 day') AT TIME ZONE 'UTC'
    ));
    dropped := 0;
    FOR partition IN SELECT name, day FROM fraud_scores_partitions WHERE expired ORDER BY day LOOP
        BEGIN
            EXECUTE format('DROP TABLE public.%I', partition.name);
            DELETE FROM fraud_scores_daily AS d WHERE d.day = partition.day;
            UPDATE fraud_labels AS l SET scored_at = NULL
            WHERE l.scored_at >= partition.day::timestamp AT TIME ZONE 'UTC'
              AND l.scored_at < (partition.day + 1)::timestamp AT TIME ZONE 'UTC';
            dropped := dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'partition % not dropped: the table is busy; retried at the next run', partition.name;
        END;
    END LOOP;
    UPDATE fraud_labels AS l SET scored_at = s.scored_at FROM fraud_scores AS s
    WHERE l.scored_at IS NULL AND s.transaction_id = l.transaction_id;
    RETURN NEXT;
END $$;

-- The rows of each day (UTC) by their kind, kept by triggers on every write: the results page's totals
-- read a few rows here instead of counting months of scores. The sink's INSERT ... ON CONFLICT DO NOTHING
-- counts only the rows it inserted (a redelivery adds nothing); a dropped partition's day is deleted
-- with it (fraud_scores_maintain).
CREATE TABLE IF NOT EXISTS fraud_scores_daily (
    day DATE PRIMARY KEY,
    scored BIGINT NOT NULL,
    flagged BIGINT NOT NULL,
    blocked BIGINT NOT NULL
);

-- Each label knows the scored_at of its transaction's score (NULL while there is none: not yet, or
-- dropped by retention), so that the quality page finds the labelled scores of its days with one probe
-- each, instead of looking a transaction id up in every partition. Set when the label is written, and
-- when its score arrives later; a label and its score committed at the same instant by two writers see
-- neither the other: fraud_scores_maintain links such labels within the hour.
ALTER TABLE fraud_labels ADD COLUMN IF NOT EXISTS scored_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS fraud_labels_scored_at ON fraud_labels (scored_at);
CREATE INDEX IF NOT EXISTS fraud_labels_unscored ON fraud_labels (transaction_id) WHERE scored_at IS NULL;

CREATE OR REPLACE FUNCTION fraud_labels_link() RETURNS TRIGGER
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    NEW.scored_at := (SELECT max(scored_at) FROM fraud_scores WHERE transaction_id = NEW.transaction_id);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION fraud_scores_written() RETURNS TRIGGER
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM fraud_scores_daily;
        UPDATE fraud_labels SET scored_at = NULL WHERE scored_at IS NOT NULL;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE fraud_scores_daily AS d SET scored = d.scored - o.scored, flagged = d.flagged - o.flagged,
                                           blocked = d.blocked - o.blocked
        FROM (SELECT (scored_at AT TIME ZONE 'UTC')::date AS day, count(*) AS scored,
                     count(*) FILTER (WHERE fraud_flag = 1) AS flagged,
                     count(*) FILTER (WHERE decision = 'block') AS blocked
              FROM old_rows GROUP BY 1) AS o
        WHERE d.day = o.day;
        UPDATE fraud_labels AS l SET scored_at = NULL FROM old_rows AS o
        WHERE l.transaction_id = o.transaction_id AND l.scored_at = o.scored_at;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- In the order of the days, so that two writers lock the days' rows in the same order.
        INSERT INTO fraud_scores_daily AS d (day, scored, flagged, blocked)
            SELECT (scored_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE fraud_flag = 1),
                   count(*) FILTER (WHERE decision = 'block')
            FROM new_rows GROUP BY 1 ORDER BY 1
        ON CONFLICT (day) DO UPDATE SET scored = d.scored + excluded.scored,
            flagged = d.flagged + excluded.flagged, blocked = d.blocked + excluded.blocked;
        UPDATE fraud_labels AS l SET scored_at = n.scored_at FROM new_rows AS n
        WHERE l.scored_at IS NULL AND l.transaction_id = n.transaction_id;
    END IF;
    RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION fraud_scores_add_partitions(TIMESTAMPTZ[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION fraud_scores_maintain(INTEGER) FROM PUBLIC;

-- Today's table becomes the partitioned one, in this migration's transaction: renamed, the new table
-- created with a partition for each day of its rows, the rows moved, the old table dropped. Skipped when
-- fraud_scores is partitioned already.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'public.fraud_scores'::regclass) = 'p' THEN
        RETURN;
    END IF;
    ALTER TABLE fraud_scores RENAME TO fraud_scores_unpartitioned;
    ALTER TABLE fraud_scores_unpartitioned DROP CONSTRAINT fraud_scores_pkey;
    DROP INDEX IF EXISTS fraud_scores_scored_at, fraud_scores_flagged, fraud_scores_alerts, fraud_scores_shadow;
    -- scored_at was never NULL in the sink's rows (DEFAULT now()); a row written by hand with NULL keeps
    -- its time of production, or the migration's.
    UPDATE fraud_scores_unpartitioned SET scored_at = coalesce(produced_at, now()) WHERE scored_at IS NULL;

    CREATE TABLE fraud_scores (
        transaction_id UUID NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        fraud_flag INTEGER NOT NULL,
        scored_at TIMESTAMPTZ NOT NULL DEFAULT now(),   -- the sink: the score record's Kafka timestamp
        model_version TEXT,
        reasons JSONB,
        transaction JSONB,
        produced_at TIMESTAMPTZ,
        decision TEXT,
        rules JSONB,
        shadow_score DOUBLE PRECISION,
        shadow_version TEXT,
        stored_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()   -- when the row was written
    ) PARTITION BY RANGE (scored_at);

    PERFORM fraud_scores_add_partitions(ARRAY(SELECT DISTINCT date_trunc('day', scored_at, 'UTC')
                                              FROM fraud_scores_unpartitioned));
    INSERT INTO fraud_scores (transaction_id, score, fraud_flag, scored_at, model_version, reasons,
                              transaction, produced_at, decision, rules, shadow_score, shadow_version,
                              stored_at)
        SELECT transaction_id, score, fraud_flag, scored_at, model_version, reasons, transaction,
               produced_at, decision, rules, shadow_score, shadow_version, scored_at
        FROM fraud_scores_unpartitioned;
    DROP TABLE fraud_scores_unpartitioned;
    ALTER TABLE fraud_scores ADD PRIMARY KEY (transaction_id, scored_at);
    INSERT INTO fraud_scores_daily (day, scored, flagged, blocked)
        SELECT (scored_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE fraud_flag = 1),
               count(*) FILTER (WHERE decision = 'block')
        FROM fraud_scores GROUP BY 1;
END $$;

UPDATE fraud_labels AS l SET scored_at = s.scored_at FROM fraud_scores AS s
WHERE l.scored_at IS NULL AND s.transaction_id = l.transaction_id;

CREATE OR REPLACE TRIGGER fraud_scores_written_insert AFTER INSERT ON fraud_scores
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fraud_scores_written();
CREATE OR REPLACE TRIGGER fraud_scores_written_update AFTER UPDATE ON fraud_scores
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fraud_scores_written();
CREATE OR REPLACE TRIGGER fraud_scores_written_delete AFTER DELETE ON fraud_scores
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fraud_scores_written();
CREATE OR REPLACE TRIGGER fraud_scores_written_truncate AFTER TRUNCATE ON fraud_scores
    FOR EACH STATEMENT EXECUTE FUNCTION fraud_scores_written();
CREATE OR REPLACE TRIGGER fraud_labels_link BEFORE INSERT ON fraud_labels
    FOR EACH ROW EXECUTE FUNCTION fraud_labels_link();

-- fraud_scores' partitions: name, day, and whether retention drops it (older than retention_days
-- before today, UTC).
CREATE OR REPLACE VIEW fraud_scores_partitions AS
    SELECT c.relname AS name, to_date(substr(c.relname, 15), 'YYYYMMDD') AS day,
           to_date(substr(c.relname, 15), 'YYYYMMDD')
               < (now() AT TIME ZONE 'UTC')::date - p.retention_days AS expired
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN fraud_scores_policy p
    WHERE i.inhparent = 'public.fraud_scores'::regclass AND c.relname ~ '^fraud_scores_p[0-9]{8}$';

SELECT fraud_scores_add_partitions(ARRAY(
    SELECT generate_series(date_trunc('day', now(), 'UTC'), date_trunc('day', now(), 'UTC') + interval '7 days',
                           interval '1 day')
));

-- The interface's reads (see docs/scaling.md for their plans on ten million rows), created on every
-- partition. The primary key also serves a lookup by transaction_id alone (one probe per partition).
CREATE INDEX IF NOT EXISTS fraud_scores_scored_at ON fraud_scores (scored_at DESC);
CREATE INDEX IF NOT EXISTS fraud_scores_flagged ON fraud_scores (scored_at DESC) WHERE fraud_flag = 1;
CREATE INDEX IF NOT EXISTS fraud_scores_alerts ON fraud_scores (scored_at DESC)
    WHERE fraud_flag = 1 OR decision IN ('block', 'review');
CREATE INDEX IF NOT EXISTS fraud_scores_shadow ON fraud_scores (shadow_version, scored_at)
    WHERE shadow_version IS NOT NULL;
-- The quality page's cards with the highest scores of each day: the day's top rows by score.
CREATE INDEX IF NOT EXISTS fraud_scores_score ON fraud_scores (score DESC);
