"""The kernel: the outbox and its sends between processes."""
