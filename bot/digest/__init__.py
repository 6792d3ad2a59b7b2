"""The business manager's daily digest and weekly summary."""
