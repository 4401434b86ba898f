-- Pending refunds indexed by partner, then arrival: the batcher reads one
-- partner's oldest pending refunds, and finding the partners with pending
-- refunds becomes a skip scan (one index probe per partner) instead of a
-- GROUP BY over every pending row (17 ms with 100 000 pending, every step).
CREATE INDEX refunds_pending_by_partner ON refunds (partner, received_at)
    WHERE status = 'pending';
DROP INDEX refunds_pending;

-- Each partner with pending refunds and its oldest pending arrival.
CREATE VIEW pending_partners AS
WITH RECURSIVE p(partner) AS (
    (SELECT partner FROM refunds WHERE status = 'pending' ORDER BY partner LIMIT 1)
    UNION ALL
    SELECT (SELECT r.partner FROM refunds r
            WHERE r.status = 'pending' AND r.partner > p.partner
            ORDER BY r.partner LIMIT 1)
    FROM p WHERE p.partner IS NOT NULL
)
SELECT p.partner,
       (SELECT min(r.received_at) FROM refunds r
        WHERE r.status = 'pending' AND r.partner = p.partner) AS oldest
FROM p WHERE p.partner IS NOT NULL;
