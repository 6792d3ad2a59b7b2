"""Tests of the mail adapters against real servers and loopback fakes."""
