-- The fencing token of the worker holding an outbox row: set when the row is claimed, and
-- required by every later write of that worker (renewing the lease, sent, deferred, failed),
-- so a worker whose lease ran out and was taken over can no longer change the row.
ALTER TABLE outbox ADD COLUMN lease_token TEXT;
