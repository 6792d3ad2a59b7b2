"""Tests of the command line (bot/cli)."""
