"""Tests of the business manager's cockpit."""
