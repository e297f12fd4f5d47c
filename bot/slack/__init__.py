"""The Slack edge: Bolt app factory, short listeners, pure Block Kit builders, the ping loop.

Nothing here decides anything about bounces or tickets; it parses what Slack sends, calls the
service layer once, renders the answer with `bot.slack.blocks` and posts it through a `Surface`
(the real Web API, or the console).
"""
