"""Chat adapters: Slack (slack-bolt) and the console, each a bot.chat.ChatChannel."""
