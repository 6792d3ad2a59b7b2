"""The long-running service: rrbot run, health, signals, restarts."""
