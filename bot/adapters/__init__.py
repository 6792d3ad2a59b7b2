"""Adapters at the edge: the only code that talks to mail servers and chat services."""
