"""Tests of ballots and voting (bot/ballots): in Slack, by email and on the command line."""
