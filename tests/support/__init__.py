"""Helpers shared by the test packages: plain modules, imported like any other (never from a
conftest). Fixtures stay in the conftest files; what they build comes from here."""
