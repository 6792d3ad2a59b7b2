"""Agency information requests: sending, chasing, escalating, extensions, templates."""
