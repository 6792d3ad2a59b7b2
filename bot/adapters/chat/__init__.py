"""Chat adapters: Slack (slack-bolt) and the console, each a bot.kernel.chat.ChatChannel."""
