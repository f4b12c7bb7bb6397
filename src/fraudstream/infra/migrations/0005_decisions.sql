-- The decision per transaction (block / review / allow: the rules in force and the model's flag) and
-- the rule versions that matched it, as [{"id", "version"}]. NULL in rows scored before the detector
-- applied rules.
ALTER TABLE fraud_scores
    ADD COLUMN IF NOT EXISTS decision TEXT,
    ADD COLUMN IF NOT EXISTS rules JSONB;

-- The results page's alerts: flagged by the model, or blocked or sent to review by a rule.
CREATE INDEX IF NOT EXISTS fraud_scores_alerts ON fraud_scores (scored_at DESC)
    WHERE fraud_flag = 1 OR decision IN ('block', 'review');
