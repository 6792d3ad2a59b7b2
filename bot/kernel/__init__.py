"""The small kernel every domain package stands on: outbox, audit, events, actions, ports."""
