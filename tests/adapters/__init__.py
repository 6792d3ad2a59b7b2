"""Tests of the adapters (bot/adapters): mail/ and chat/, on real servers and loopback fakes."""
