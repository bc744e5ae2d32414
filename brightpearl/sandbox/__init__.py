"""Brightpearl sandbox: a stateful stand-in for the Brightpearl public REST API (framework-free).

See docs/sandbox-brightpearl.md and docs/contract-brightpearl.md.
"""

from .app import SandboxApp, create_app
from .control import SandboxControl, SandboxControlError
from .server import SandboxServer

__all__ = ["SandboxApp", "SandboxControl", "SandboxControlError", "SandboxServer", "create_app"]
