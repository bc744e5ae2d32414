"""Test and demo servers, never production code: what the sandboxes share.

The Brightpearl sandbox (`brightpearl/sandbox/`) and the returns-platform sandboxes
(`returns/platforms/{loop,returngo}/sandbox.py`) fake the real services over real HTTP for the
tests, the demo and the benchmarks. `sandboxes.http` is their one HTTP core: the threaded
server, request parsing and JSON answers. Nothing the web process, the workers or beat run
imports this package (docs/architecture.md, "Sandboxes").
"""
