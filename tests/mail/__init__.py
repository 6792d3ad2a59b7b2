"""Tests of bot/mail: sender verification at the boundary, the parser, the survey."""
