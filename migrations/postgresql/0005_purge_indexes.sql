-- What the purge reads per batch (collab.meta.sql.purge): the oldest finished webhook
-- deliveries past the retention. Without it each batch scanned every retained delivery (30
-- days of them by default), and each batch of their attempts did too, under the one writer.
-- Only finished rows are in it, so pending ones (the queue's hot rows) never update it.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE state <> 'pending';
