"""The generic JSON intake API: custom portals push returns and refunds to a connection.

Requests are mapped to `returns.platforms.base.NeutralRma` and stored with `upsert_rma`, so
validation, flagging and the never-backwards lifecycle are exactly those of Loop and ReturnGO.
See docs/intake-api.md.
"""
