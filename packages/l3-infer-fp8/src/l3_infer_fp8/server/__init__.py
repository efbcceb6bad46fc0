"""The OpenAI-compatible server: ``create_app`` over an engine loop, ``SERVE_COMMAND``."""

from l3_infer_fp8.server.app import ServerState, create_app
from l3_infer_fp8.server.command import SERVE_COMMAND

__all__ = ["SERVE_COMMAND", "ServerState", "create_app"]
