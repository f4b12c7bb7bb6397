-- The review queue without reading every alert (see docs/scaling.md, "PostgreSQL"). Both indexes are
-- partial, like fraud_scores_flagged (the queue newest first): only the flagged rows are in them.
--
-- By score: each partition's alerts in the queue's order (score DESC, scored_at DESC), so that its first
-- rows are the partitions' index scans merged (Merge Append) and stopped at the page's limit. Its
-- "waiting" count (up to a cap) reads the alerts' transaction ids from this index alone, to leave out
-- the decided ones: an index-only scan where the visibility map allows, no heap page per alert.
CREATE INDEX IF NOT EXISTS fraud_scores_flagged_score ON fraud_scores (score DESC, scored_at DESC)
    INCLUDE (transaction_id) WHERE fraud_flag = 1;
-- By category: a category filter reads only the alerts of its categories (a bitmap scan), not every
-- alert of the period with its input.
CREATE INDEX IF NOT EXISTS fraud_scores_flagged_category ON fraud_scores ((transaction->>'cat_id'))
    WHERE fraud_flag = 1;
--
-- An index on a partitioned table cannot be built CONCURRENTLY: the sink's writes wait while every
-- partition is scanned and its indexes built (on a large table, run it at a quiet hour).
