"""The OpenAI-compatible FastAPI app over an :class:`~l3_infer_fp8.engine.loop.EngineLoop`.

Errors follow OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``: a missing,
mistyped or out-of-range field is 400 naming it, a full queue 429, shutting down 503.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from l3_core.tokenizer import ChatFormat, Tokenizer
from l3_infer_fp8.engine.loop import EngineLoop, EngineStoppedError
from l3_infer_fp8.engine.request import RequestOutput
from l3_infer_fp8.engine.sampling import SamplingParams
from l3_infer_fp8.errors import InvalidRequestError, QueueFullError
from l3_infer_fp8.server.chat import encode_chat, parse_tool_calls
from l3_infer_fp8.server.guard import ServerGuard
from l3_infer_fp8.server.metrics import prometheus_text
from l3_infer_fp8.server.protocol import ChatRequest, CompletionRequest


@dataclass
class ServerState:
    engine: EngineLoop
    tokenizer: Tokenizer
    model_name: str
    guard: ServerGuard | None = None
    drain_s: float = 10.0
    rejected: int = 0


def _error(status: int, message: str, param: str | None, kind: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


def create_app(state: ServerState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.engine.start()
        yield
        await asyncio.to_thread(state.engine.stop, state.drain_s)  # finish, then cancel

    app = FastAPI(title="l3-infer-fp8", lifespan=lifespan)
    _install_error_handlers(app, state)

    @app.get("/v1/models")
    async def models() -> dict:
        return {
            "object": "list",
            "data": [{"id": state.model_name, "object": "model", "created": 0, "owned_by": "l3"}],
        }

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        stats = state.engine.stats() | {"rejected": state.rejected}
        return PlainTextResponse(prometheus_text(stats), media_type="text/plain; version=0.0.4")

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        _check_model(state, body.model)
        prompt_ids = _completion_prompt(state.tokenizer, body.prompt)
        turns = [{"role": "user", "content": state.tokenizer.decode(prompt_ids)}]
        params = body.sampling(_max_tokens(body.max_tokens, "max_tokens"), body.logprobs)
        return await _respond(
            state, "text_completion", prompt_ids, params, turns, body.stream, tools=False
        )

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest):
        _check_model(state, body.model)
        tools = body.tools if body.tool_choice != "none" else None
        prompt_ids = encode_chat(ChatFormat(state.tokenizer), body.messages, tools)
        turns = [
            {"role": "agent" if m.role == "assistant" else "user", "content": m.text()}
            for m in body.messages
            if m.role in ("user", "assistant") and m.text()
        ]
        requested = body.max_completion_tokens or body.max_tokens
        if requested is None:  # OpenAI's default: up to the end of the context
            requested = max(1, state.engine.engine.args.max_seq_len - len(prompt_ids))
        params = body.sampling(_max_tokens(requested, "max_tokens"), body.logprob_count())
        return await _respond(
            state,
            "chat.completion",
            prompt_ids,
            params,
            turns,
            body.stream,
            tools=bool(tools),
            field="messages",
        )

    return app


def _install_error_handlers(app: FastAPI, state: ServerState) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        param = ".".join(loc) or "body"
        return _error(
            400, f"field '{param}': {err.get('msg', 'invalid')}", param, "invalid_request_error"
        )

    @app.exception_handler(InvalidRequestError)
    async def bad(request: Request, exc: InvalidRequestError) -> JSONResponse:
        return _error(400, str(exc), exc.field, "invalid_request_error")

    @app.exception_handler(QueueFullError)
    async def full(request: Request, exc: QueueFullError) -> JSONResponse:
        state.rejected += 1
        return _error(429, str(exc), None, "rate_limit_error")

    @app.exception_handler(EngineStoppedError)
    async def stopping(request: Request, exc: EngineStoppedError) -> JSONResponse:
        return _error(503, str(exc), None, "server_error")


def _check_model(state: ServerState, model: str) -> None:
    if model != state.model_name:
        raise InvalidRequestError(
            f"field 'model' is {model!r}: this server serves {state.model_name!r}", "model"
        )


def _max_tokens(value: int | None, field: str) -> int:
    if value is None or value <= 0:
        raise InvalidRequestError(f"field '{field}' is {value!r}: expected an integer >= 1", field)
    return value


def _completion_prompt(tok: Tokenizer, prompt: str | list[int] | list[str]) -> list[int]:
    if isinstance(prompt, str):
        return tok.encode(prompt, bos=True, eos=False)
    if prompt and all(isinstance(p, str) for p in prompt):
        if len(prompt) != 1:
            raise InvalidRequestError(
                "field 'prompt' holds several strings: send one prompt per request (use n "
                "for several samples)",
                "prompt",
            )
        return tok.encode(prompt[0], bos=True, eos=False)
    return list(prompt)  # token ids, checked by the engine


# -- running the choices ----------------------------------------------------------------------


async def _stream_choices(
    state: ServerState, prompt_ids: list[int], params: Sequence[SamplingParams], field: str
) -> AsyncIterator[tuple[int, RequestOutput]]:
    """(choice index, output) as the engine produces them; unfinished choices are cancelled
    when the consumer goes away (a client disconnect)."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[int, RequestOutput]] = asyncio.Queue()
    handles = []
    try:
        for i, p in enumerate(params):

            def push(out: RequestOutput, i: int = i) -> None:
                loop.call_soon_threadsafe(q.put_nowait, (i, out))

            try:
                handles.append(await asyncio.to_thread(state.engine.submit, prompt_ids, p, push))
            except InvalidRequestError as e:
                if e.field == "prompt" and field != "prompt":
                    raise InvalidRequestError(
                        str(e).replace("'prompt'", f"'{field}'"), field
                    ) from e
                raise
        open_ = len(handles)
        while open_:
            i, out = await q.get()
            if out.finished:
                open_ -= 1
            yield i, out
    finally:
        for h in handles:
            h.cancel()  # a no-op for finished requests


@dataclass
class _Choice:
    ids: list[int]
    text: str
    logprobs: list
    reason: str | None = None


async def _collect(state, prompt_ids, params, field) -> list[_Choice]:
    choices = [_Choice([], "", []) for _ in params]
    async for i, out in _stream_choices(state, prompt_ids, params, field):
        c = choices[i]
        c.ids += out.new_token_ids
        c.text += out.new_text
        c.logprobs += out.new_logprobs
        if out.finished:
            c.reason = out.finish_reason
    return choices


async def _respond(state, kind, prompt_ids, params, turns, stream, tools, field="prompt"):
    rid = f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}"
    created = int(time.time())
    refusal = None
    if state.guard is not None:
        refusal = await asyncio.to_thread(state.guard.refuse_input, turns)
    if refusal is None and stream and state.guard is None:
        gen = _stream_choices(state, prompt_ids, params, field)
        first = await anext(gen, None)  # errors (400, 429) surface before the stream starts
        return StreamingResponse(
            _sse(state, kind, rid, created, first, gen, tools), media_type="text/event-stream"
        )
    if refusal is not None:
        choices = [_Choice([], refusal, [], "content_filter") for _ in params]
    else:
        choices = await _collect(state, prompt_ids, params, field)
        if state.guard is not None:
            for c in choices:
                out_refusal = await asyncio.to_thread(state.guard.refuse_output, turns, c.text)
                if out_refusal is not None:
                    c.text, c.reason, c.logprobs = out_refusal, "content_filter", []
    body = _full_body(state, kind, rid, created, prompt_ids, choices, tools)
    if stream:  # with the guard on, the answer is checked whole, then streamed
        return StreamingResponse(_replay_sse(body, kind), media_type="text/event-stream")
    return body


def _usage(prompt_ids: list[int], choices: Sequence[_Choice]) -> dict:
    done = sum(len(c.ids) for c in choices)
    return {
        "prompt_tokens": len(prompt_ids),
        "completion_tokens": done,
        "total_tokens": len(prompt_ids) + done,
    }


def _full_body(state, kind, rid, created, prompt_ids, choices, tools) -> dict:
    out = []
    for i, c in enumerate(choices):
        if kind == "text_completion":
            out.append(
                {
                    "index": i,
                    "text": c.text,
                    "finish_reason": c.reason,
                    "logprobs": _completion_logprobs(state.tokenizer, c.logprobs)
                    if c.logprobs
                    else None,
                }
            )
            continue
        message: dict = {"role": "assistant", "content": c.text}
        calls = parse_tool_calls(c.text) if tools and c.reason != "content_filter" else None
        reason = c.reason
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            reason = "tool_calls"
        out.append(
            {
                "index": i,
                "message": message,
                "finish_reason": reason,
                "logprobs": _chat_logprobs(state.tokenizer, c.logprobs) if c.logprobs else None,
            }
        )
    return {
        "id": rid,
        "object": kind,
        "created": created,
        "model": state.model_name,
        "choices": out,
        "usage": _usage(prompt_ids, choices),
    }


async def _sse(state, kind, rid, created, first, gen, tools) -> AsyncIterator[str]:
    """Server-sent events of the engine's outputs as they come. With tools, each choice's text
    is held to its end, so a tool call is sent parsed (as ``tool_calls``), never as text."""
    chunk_kind = "chat.completion.chunk" if kind == "chat.completion" else kind
    held: dict[int, str] = {}
    started: set[int] = set()

    def event(i: int, out: RequestOutput) -> list[str]:
        events = []
        if kind == "text_completion":
            choice = {
                "index": i,
                "text": out.new_text,
                "finish_reason": out.finish_reason,
                "logprobs": _completion_logprobs(state.tokenizer, out.new_logprobs)
                if out.new_logprobs
                else None,
            }
            return [_chunk(rid, chunk_kind, created, state.model_name, choice)]
        if i not in started:
            started.add(i)
            events.append(
                _chunk(
                    rid,
                    chunk_kind,
                    created,
                    state.model_name,
                    {
                        "index": i,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    },
                )
            )
        text, reason = out.new_text, out.finish_reason
        delta: dict = {}
        if tools:
            held[i] = held.get(i, "") + text
            if out.finished:
                calls = parse_tool_calls(held[i])
                if calls:
                    delta = {"tool_calls": [dict(c, index=k) for k, c in enumerate(calls)]}
                    reason = "tool_calls"
                else:
                    delta = {"content": held[i]}
        elif text:
            delta = {"content": text}
        if delta or out.finished:
            choice = {
                "index": i,
                "delta": delta,
                "finish_reason": reason,
                "logprobs": _chat_logprobs(state.tokenizer, out.new_logprobs)
                if out.new_logprobs
                else None,
            }
            events.append(_chunk(rid, chunk_kind, created, state.model_name, choice))
        return events

    if first is not None:
        for e in event(*first):
            yield e
    async for i, out in gen:
        for e in event(i, out):
            yield e
    yield "data: [DONE]\n\n"


async def _replay_sse(body: dict, kind: str) -> AsyncIterator[str]:
    chunk_kind = "chat.completion.chunk" if kind == "chat.completion" else kind
    for c in body["choices"]:
        if kind == "text_completion":
            choice = dict(c)
        else:
            delta = {"role": "assistant", **{k: v for k, v in c["message"].items() if k != "role"}}
            if "tool_calls" in delta:
                delta["tool_calls"] = [dict(t, index=k) for k, t in enumerate(delta["tool_calls"])]
            choice = {
                "index": c["index"],
                "delta": delta,
                "finish_reason": c["finish_reason"],
                "logprobs": c["logprobs"],
            }
        yield _chunk(body["id"], chunk_kind, body["created"], body["model"], choice)
    yield "data: [DONE]\n\n"


def _chunk(rid, kind, created, model, choice) -> str:
    data = {"id": rid, "object": kind, "created": created, "model": model, "choices": [choice]}
    return f"data: {json.dumps(data)}\n\n"


def _completion_logprobs(tok: Tokenizer, lps) -> dict:
    return {
        "tokens": [tok.decode([lp.token_id]) for lp in lps],
        "token_logprobs": [lp.logprob for lp in lps],
        "top_logprobs": [{tok.decode([t]): v for t, v in lp.top.items()} for lp in lps],
        "text_offset": [],
    }


def _chat_logprobs(tok: Tokenizer, lps) -> dict:
    def entry(t: int, v: float) -> dict:
        s = tok.decode([t])
        return {"token": s, "logprob": v, "bytes": list(s.encode())}

    return {
        "content": [
            dict(
                entry(lp.token_id, lp.logprob),
                top_logprobs=[entry(t, v) for t, v in lp.top.items()],
            )
            for lp in lps
        ]
    }
