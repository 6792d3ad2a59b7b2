"""The running service: wiring, run loop, health, logs, demo."""
