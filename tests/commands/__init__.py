"""Tests of the command layer: one typed function per action a person can take."""
