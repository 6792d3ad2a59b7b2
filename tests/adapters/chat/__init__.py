"""Tests of the chat adapters (bot/adapters/chat): Slack through a loopback Web API, the console."""
