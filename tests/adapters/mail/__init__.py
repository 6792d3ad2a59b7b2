"""Tests of the mail adapters (bot/adapters/mail): one contract suite, each backend's own."""
