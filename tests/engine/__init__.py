"""Engine tests: step(now), the outbox, the audit trail, crashes and concurrency."""
