"""Chat tests: Slack through a loopback Web API and signed requests, the console, email votes."""
