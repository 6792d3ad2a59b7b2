"""Agency information requests: requests, contacts, chasing."""
