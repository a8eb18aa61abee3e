-- What the purge reads per batch (collab.meta.sql.purge): the oldest finished webhook
-- deliveries past the retention. Without it each batch scanned every retained delivery (30
-- days of them by default), and each batch of their attempts did too, under the one writer.
-- Only finished rows are in it, so pending ones (the queue's hot rows) never update it.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE state <> 'pending';

-- A room's messages still in its chat doc (not archived): what a chat doc's load archives
-- below its window (collab.chat.window, Messages.archive_messages with `keep`) is found here,
-- not by reading the room's whole history on its primary key under the writer (200,000
-- messages: ~24 ms a load). A few rows per room: the window.
CREATE INDEX messages_live ON messages (room_id, seq) WHERE NOT archived;
