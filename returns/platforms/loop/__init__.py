"""Loop Returns: client, adapter, sandbox."""
