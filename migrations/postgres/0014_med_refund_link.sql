-- MED link (issue #13 item 8): a refund request we close as TOTALLY/PARTIALLY_ACCEPTED names the
-- refund (pacs.004, type CASHOUT) whose return EndToEndId was sent to DICT, when it is one of ours.
-- Same columns and names as the other backend's 0014.

ALTER TABLE dict_refund_requests ADD COLUMN refund_id TEXT REFERENCES refunds (id);

-- A refund created by closing a MED request carries the request's id in its metadata; at most one
-- such refund is alive (not FAILED) per request, so a retried or concurrent close reuses it instead
-- of returning the funds twice (the second insert fails and nothing is held or sent).
CREATE UNIQUE INDEX refunds_med_request ON refunds (tenant_id, (metadata ->> 'medRefundRequestId'))
    WHERE status <> 'FAILED';
