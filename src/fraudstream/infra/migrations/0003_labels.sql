-- Decisions on transactions (analysts' reviews, chargebacks, ...): an append-only audit trail, never
-- updated in place. A transaction's current label is its latest by labelled_at, then by arrival (id).
CREATE TABLE IF NOT EXISTS fraud_labels (
    id BIGSERIAL PRIMARY KEY,
    label_id UUID NOT NULL UNIQUE,          -- identity of a decision: replays and repeats collapse to one row
    transaction_id UUID NOT NULL,           -- no foreign key: a label may arrive before its score
    label SMALLINT NOT NULL CHECK (label IN (0, 1)),
    source TEXT NOT NULL CHECK (source <> ''),   -- analyst | chargeback | ...
    author TEXT NOT NULL CHECK (author <> ''),
    labelled_at TIMESTAMPTZ NOT NULL,
    note TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS fraud_labels_transaction ON fraud_labels (transaction_id, labelled_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS fraud_labels_labelled_at ON fraud_labels (labelled_at);  -- `labels export --since`

CREATE OR REPLACE VIEW current_labels AS
    SELECT DISTINCT ON (transaction_id) transaction_id, label_id, label, source, author, labelled_at, note
    FROM fraud_labels ORDER BY transaction_id, labelled_at DESC, id DESC;
