"""ReturnGO: client, adapter, sandbox."""
