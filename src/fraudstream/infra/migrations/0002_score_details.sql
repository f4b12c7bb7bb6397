-- What the pipeline knows about a score beyond the seed's three fields:
-- the model that gave it, its top reasons, the input of flagged transactions (for the analyst's view),
-- and when the transaction was produced to Kafka (for produce-to-committed latency).
ALTER TABLE fraud_scores
    ADD COLUMN IF NOT EXISTS model_version TEXT,
    ADD COLUMN IF NOT EXISTS reasons JSONB,
    ADD COLUMN IF NOT EXISTS transaction JSONB,
    ADD COLUMN IF NOT EXISTS produced_at TIMESTAMPTZ;

CREATE INDEX IF NOT EXISTS fraud_scores_scored_at ON fraud_scores (scored_at DESC);
CREATE INDEX IF NOT EXISTS fraud_scores_flagged ON fraud_scores (scored_at DESC) WHERE fraud_flag = 1;
