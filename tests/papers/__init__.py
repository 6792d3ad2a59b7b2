"""Tests of bot/papers: forms, returns read, the chronology and the draft."""
