"""The bot's tests: unit tests per package, scenarios over simulated time, real servers."""
