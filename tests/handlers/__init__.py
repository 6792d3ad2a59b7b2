"""Tests of inbound mail handling: intake, replies, noise, senders and threading."""
