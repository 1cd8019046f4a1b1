"""A local stand-in for the provider APIs (real HTTP on 127.0.0.1), for tests, demos and the UI.

``python -m include.sandbox --data DIR --port PORT``; from Python, :class:`SandboxServer`.
"""

from include.sandbox.server import SandboxServer

__all__ = ["SandboxServer"]
