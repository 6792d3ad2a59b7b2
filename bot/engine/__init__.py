"""The step function over time and the inbound pipeline."""
