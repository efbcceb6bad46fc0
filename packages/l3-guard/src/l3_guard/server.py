"""The optional HTTP service (``pip install 'l3-guard[serve]'``; ``l3-guard serve``).

Endpoints (JSON in, JSON out): ``POST /v1/scan-code`` {language, code}, ``POST /v1/prompt-guard``
{text}, ``POST /v1/moderate`` {text, role} or {conversation}, ``POST /v1/check``
{conversation} or {text}, ``GET /healthz``. A check that cannot run, a model that cannot load
included, answers with its fail-closed verdict and an ``error`` field (HTTP 200), so a client
never reads a failure as "safe"; ``/healthz`` then answers 503 naming each broken check. A
request body that is not the expected shape is a 422 from FastAPI's validation.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from l3_core.versions import package_version
from l3_guard.code_shield import CodeScanResult
from l3_guard.fail_closed import fail_closed
from l3_guard.guard import Guard
from l3_guard.moderation import error_result
from l3_guard.prompt_guard import PromptGuardResult


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
    app = FastAPI(title="l3-guard", version=package_version("l3-guard"))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each bad value, and a NaN or Infinity (which Python's
        # JSON reads) cannot be written back: that turned a 422 into a 500. Name the field only.
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/healthz", response_model=None)
    def healthz() -> dict[str, Any] | JSONResponse:
        errors = guard.load_errors()
        if errors:
            return JSONResponse({"status": "unavailable", "errors": errors}, status_code=503)
        return {"status": "ok"}

    # Each check is reached through the guard inside fail_closed, so a model that fails to
    # load answers with the check's fail-closed verdict rather than a 500.
    @app.post("/v1/scan-code")
    def scan_code(req: CodeRequest) -> dict[str, Any]:
        return fail_closed(
            "code scan",
            lambda: guard.code_shield.scan(req.code, req.language),
            lambda e: CodeScanResult.failed(req.language, e),
        ).to_dict()

    @app.post("/v1/prompt-guard")
    def prompt_guard(req: TextRequest) -> dict[str, Any]:
        return fail_closed(
            "prompt guard", lambda: guard.prompt_guard.classify(req.text), PromptGuardResult.failed
        ).to_dict()

    @app.post("/v1/moderate")
    def moderate(req: ModerateRequest) -> dict[str, Any]:
        conv, role = _conversation(req)
        return fail_closed(
            "moderation",
            lambda: guard.moderator.moderate(conv, role),
            lambda e: error_result(role, guard.moderator_name, e),
        ).to_dict()

    @app.post("/v1/check")
    def check(req: ModerateRequest) -> dict[str, Any]:
        conv, role = _conversation(req)
        if isinstance(conv, str):
            conv = [{"role": role or "user", "content": conv}]
        return guard.check(conv).to_dict()

    return app
