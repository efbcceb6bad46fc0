"""Chat requests to Llama 3.1 prompts (tools in the 3.1 JSON tool-call format), and tool
calls parsed back out of the model's answer.

With tools, the system message starts with ``Environment: ipython`` and the function
definitions as JSON with the instruction to answer ``{"name": ..., "parameters": {...}}``,
as Llama 3.1's custom tool calling does. An assistant turn that called tools is encoded as
a tool-call message (``<|python_tag|>`` JSON ``<|eom_id|>``); tool results are ``ipython``
turns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from l3_core.tokenizer import ChatFormat, Message
from l3_infer_fp8.server.protocol import ChatMessage, Tool, ToolCall

PYTHON_TAG = "<|python_tag|>"

TOOL_INSTRUCTIONS = (
    "Environment: ipython\n\n"
    "You have access to the following functions. To call a function, respond with JSON for "
    'a function call in the format {"name": function name, "parameters": dictionary of '
    "argument name and its value}. Do not use variables.\n\n"
)

_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "ipython",
    "ipython": "ipython",
}


def to_messages(messages: Sequence[ChatMessage], tools: Sequence[Tool] | None) -> list[Message]:
    out: list[Message] = []
    for m in messages:
        if m.tool_calls:
            calls = [{"name": c.function.name, "parameters": _arguments(c)} for c in m.tool_calls]
            body = json.dumps(calls[0] if len(calls) == 1 else calls)
            out.append(Message("assistant", body, tool_call=True))
        else:
            out.append(Message(_ROLES[m.role], m.text()))
    if tools:
        defs = "\n\n".join(json.dumps(t.function.model_dump()) for t in tools)
        system = TOOL_INSTRUCTIONS + defs
        if out and out[0].role == "system":
            out[0] = Message("system", system + "\n\n" + out[0].content)
        else:
            out.insert(0, Message("system", system))
    return out


def encode_chat(fmt: ChatFormat, messages: Sequence[ChatMessage], tools) -> list[int]:
    return fmt.encode_dialog_prompt(to_messages(messages, tools))


def parse_tool_calls(text: str) -> list[dict] | None:
    """OpenAI ``tool_calls`` from an answer that is one JSON call (or a list of them),
    optionally after ``<|python_tag|>``; None when the answer is not a tool call."""
    body = text.strip().removeprefix(PYTHON_TAG).strip()
    try:
        data = json.loads(body)
    except ValueError:
        return None
    calls = data if isinstance(data, list) else [data]
    parsed = []
    for c in calls:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            return None
        args = c.get("parameters", c.get("arguments", {}))
        if not isinstance(args, dict):
            return None
        parsed.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(args)},
            }
        )
    return parsed or None


def _arguments(call: ToolCall) -> dict:
    try:
        args = json.loads(call.function.arguments or "{}")
    except ValueError:
        return {"arguments": call.function.arguments}
    return args if isinstance(args, dict) else {"arguments": args}
