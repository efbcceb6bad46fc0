"""The optional HTTP service (``pip install 'l3-guard[serve]'``; ``l3-guard serve``).

Endpoints (JSON in, JSON out): ``POST /v1/scan-code`` {language, code}, ``POST /v1/prompt-guard``
{text}, ``POST /v1/moderate`` {text, role} or {conversation}, ``POST /v1/check``
{conversation} or {text}, ``GET /healthz``. Errors inside a check come back as a fail-closed
verdict with an ``error`` field (HTTP 200); a request body that is not the expected shape is
a 422 from FastAPI's validation.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from l3_guard.guard import Guard


class CodeRequest(BaseModel):
    language: str
    code: str


class TextRequest(BaseModel):
    text: str


class Message(BaseModel):
    role: Literal["user", "agent", "assistant"]
    content: str


class ModerateRequest(BaseModel):
    text: str | None = None
    role: Literal["user", "agent", "assistant"] = "user"
    conversation: list[Message] | None = Field(default=None, description="instead of text")


def _conversation(req: ModerateRequest) -> tuple[Any, Any]:
    if req.conversation is not None:
        return [m.model_dump() for m in req.conversation], None
    role = "agent" if req.role == "assistant" else req.role
    return req.text if req.text is not None else "", role


def create_app(guard: Guard | None = None) -> FastAPI:
    """The FastAPI app around one shared, thread-safe :class:`Guard`."""
    guard = guard or Guard()
    app = FastAPI(title="l3-guard", version="0.1.0")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/scan-code")
    def scan_code(req: CodeRequest) -> dict[str, Any]:
        return guard.code_shield.scan_safe(req.code, req.language).to_dict()

    @app.post("/v1/prompt-guard")
    def prompt_guard(req: TextRequest) -> dict[str, Any]:
        return guard.prompt_guard.classify_safe(req.text).to_dict()

    @app.post("/v1/moderate")
    def moderate(req: ModerateRequest) -> dict[str, Any]:
        conv, role = _conversation(req)
        try:
            return guard.moderator.moderate(conv, role).to_dict()
        except Exception as e:  # fail closed, with the reason
            from l3_guard.moderation import error_result

            return error_result(role, getattr(guard.moderator, "name", "?"), e).to_dict()

    @app.post("/v1/check")
    def check(req: ModerateRequest) -> dict[str, Any]:
        conv, role = _conversation(req)
        if isinstance(conv, str):
            conv = [{"role": role or "user", "content": conv}]
        return guard.check(conv).to_dict()

    return app
