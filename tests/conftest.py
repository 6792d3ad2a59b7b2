"""Shared pytest configuration: the real test servers come from tests.servers.fixtures."""

pytest_plugins = ["tests.servers.fixtures"]
