"""Whole cases on a simulated clock, across the packages."""
