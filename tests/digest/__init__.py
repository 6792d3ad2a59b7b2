"""Tests of the business manager's daily digest and weekly summary."""
