"""Platform-neutral returns (RMAs, lines, refunds) and the returns-platform adapters."""
