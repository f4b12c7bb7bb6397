-- The shadow challenger's score of each transaction and the registry version that gave it; never part
-- of the decision. NULL when no challenger was set. Compared with the champion on labelled transactions.
ALTER TABLE fraud_scores
    ADD COLUMN IF NOT EXISTS shadow_score DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS shadow_version TEXT;

CREATE INDEX IF NOT EXISTS fraud_scores_shadow ON fraud_scores (shadow_version, scored_at)
    WHERE shadow_version IS NOT NULL;
