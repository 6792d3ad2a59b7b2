"""Timed jobs, one module per job; the scheduler discovers them."""
