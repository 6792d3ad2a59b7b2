"""The rrbot command line: parse arguments, call bot.commands, print."""
