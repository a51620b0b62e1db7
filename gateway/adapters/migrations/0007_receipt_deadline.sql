-- Submitted messages waiting for their receipt, by age: the sweeper expires the overdue.
CREATE INDEX messages_awaiting_receipt ON messages (submitted_at) WHERE state = 30;
