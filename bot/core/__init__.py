"""The pure core: decisions only, no I/O; imports only the stdlib and bot.core."""
