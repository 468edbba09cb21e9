-- The sweeper keeps reading BTG back for cash-outs released because BTG had no record of them
-- (BTG_NOT_FOUND): a payment BTG confirms afterwards opens a CONFIRMED_AFTER_FAILED incident
-- that re-debits the customer. This index keeps that scan off the rest of the table.
CREATE INDEX transfers_not_found_watch ON transfers (updated_at)
    WHERE step = 'RELEASED' AND failure_code = 'BTG_NOT_FOUND';
