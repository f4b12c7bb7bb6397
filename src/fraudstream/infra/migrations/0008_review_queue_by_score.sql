-- The review queue ordered by score: the alerts of each partition by (score DESC, scored_at DESC), the
-- queue's order, so that its first rows are the partitions' index scans merged (Merge Append) and
-- stopped at the page's limit instead of every alert of every partition read and sorted. Partial, like
-- fraud_scores_flagged (the queue newest first): only the flagged rows are in it.
--
-- An index on a partitioned table cannot be built CONCURRENTLY: the sink's writes wait while every
-- partition is scanned and its index built (run it at a quiet hour on a large table).
CREATE INDEX IF NOT EXISTS fraud_scores_flagged_score ON fraud_scores (score DESC, scored_at DESC)
    WHERE fraud_flag = 1;
