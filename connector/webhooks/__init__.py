"""Inbound webhooks: one small view per source on a shared base (store → verify → parse →
answer → process after commit)."""
