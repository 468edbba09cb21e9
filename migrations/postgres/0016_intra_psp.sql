-- Intra-PSP settlement (issue #14): a cash-out between two accounts of the institution is
-- debited, delivered to the internal cash-in, then settled or reverted, without BTG; refunds of
-- intra-PSP cash-ins are marked as such. Same tables and names as migrations/sqlite/0016.

ALTER TABLE transfers DROP CONSTRAINT transfers_step_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_step_check CHECK (step IN
    ('NEW', 'HELD', 'SENT', 'SETTLED', 'RELEASED', 'REFUSED', 'REFUSAL_FAILED', 'INCIDENT_OPEN', 'INCIDENT_CORRECTED',
     'DEBITED', 'DELIVERING', 'REVERTED'));
ALTER TABLE transfers DROP CONSTRAINT transfers_incident_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_incident_check CHECK (incident IN
    ('CONFIRMED_AFTER_FAILED', 'REJECTED_AFTER_COMPLETED', 'DEBIT_REVERT_FAILED'));
DROP INDEX transfers_in_flight;
CREATE INDEX transfers_in_flight ON transfers (updated_at)
    WHERE step IN ('NEW', 'HELD', 'SENT', 'INCIDENT_OPEN', 'DEBITED', 'DELIVERING');

ALTER TABLE refunds ADD COLUMN is_intra_psp BOOLEAN NOT NULL DEFAULT FALSE;
