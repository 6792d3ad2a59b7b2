"""Mail as the bot reads and writes it: MIME, sender verification, rendering."""
