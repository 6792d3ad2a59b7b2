"""Tests of working days, presets and timelines (bot/process)."""
