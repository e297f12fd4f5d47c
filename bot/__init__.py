"""delistbot: diagnose bounces, draft delist requests, track them to the end."""
