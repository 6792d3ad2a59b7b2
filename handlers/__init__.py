"""Handlers, one module per kind of inbound message; the dispatcher discovers them."""
