"""Business rules: plain functions that take a connection first and do one job."""
