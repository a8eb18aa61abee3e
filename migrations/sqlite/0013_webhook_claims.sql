-- What a webhook claim reads per endpoint (collab.meta.sql.webhooks._CLAIM): its head, the
-- oldest due pending delivery, and whether one is in flight. Without them the claim checked
-- every due delivery against its endpoint's leases: quadratic in a recovered endpoint's
-- backlog, on the one writer. The second index holds only leases (claimed_until is cleared
-- when the attempt is recorded), so it stays a row or two per endpoint.
CREATE INDEX webhook_deliveries_head ON webhook_deliveries (endpoint_id, state, due, id);
CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (endpoint_id, claimed_until)
    WHERE state = 'pending' AND claimed_until IS NOT NULL;
