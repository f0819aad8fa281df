"""The one normaliser: OpenTelemetry GenAI semantic conventions and OpenInference → our spans.

Both vocabularies are experimental and still moving, so the mapping lives here as data: each
``*_KEYS`` tuple lists the attributes read for one field, **first present wins**, and
:data:`MAPPING` repeats them as rows (field, attributes, where the vocabularies disagree and what
we chose) for the documentation and for ``tests/otel/test_semconv.py``, which has one test per
row. :func:`normalize` reads a :class:`~codeur_widgets.otel.records.SpanRecord` (from the
in-process SDK or from OTLP: one path) and returns a :class:`Norm`.

Nothing here knows about ancestry: which agent a span belongs to when it does not say, who
delegated to whom, and aggregated usage are decided by :mod:`codeur_widgets.otel.correlate`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..core.events import MAX_STRING
from ..core.spans import CONTENT_LIMIT
from .records import STATUS_ERROR, SpanRecord

__all__ = [
    "AGENT_NAME_KEYS",
    "CANCELLED_ERROR_TYPES",
    "MAPPING",
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_TEXT",
    "Norm",
    "clip",
    "normalize",
]

# -- the table -------------------------------------------------------------------------------
OPERATION = "gen_ai.operation.name"
OI_KIND = "openinference.span.kind"

#: gen_ai.operation.name → our span kind (GenAI semantic conventions).
GENAI_OPERATIONS = {
    "invoke_agent": "agent",
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "retrieval": "retrieval",
    "create_agent": "other",
}
#: openinference.span.kind → our span kind (OpenInference). CHAIN, RERANKER, GUARDRAIL,
#: EVALUATOR, PROMPT and UNKNOWN are ``other``.
OPENINFERENCE_KINDS = {
    "AGENT": "agent",
    "LLM": "llm",
    "TOOL": "tool",
    "RETRIEVER": "retrieval",
    "EMBEDDING": "embedding",
}
#: An agent's name: the first present. ``graph.node.name`` (a label) before ``graph.node.id``
#: (an identifier); a span named ``invoke_agent X`` gives ``X``, and an agent span with none of
#: these is named after its span name (OpenInference's LangChain and OpenAI Agents spans).
AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name", "graph.node.name", "graph.node.id")
GRAPH_NODE_ID = "graph.node.id"
GRAPH_PARENT_ID = "graph.node.parent_id"
#: Model: the response's model first (what answered), then the request's. OpenInference has one
#: attribute, ``llm.model_name``, taken as both.
MODEL_RESPONSE_KEYS = ("gen_ai.response.model", "llm.model_name")
MODEL_REQUEST_KEYS = ("gen_ai.request.model", "llm.model_name")
#: Tokens: current GenAI names, then the older ones, then OpenInference's. Totals
#: (``llm.token_count.total``) and cache details are kept as attributes, never added.
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
#: Cost in USD: OpenInference's total; ``gen_ai.usage.cost`` (not in the GenAI conventions,
#: written by some SDKs) second. Absent → absent (the trace store prices it by model).
COST_KEYS = ("llm.cost.total", "gen_ai.usage.cost")
#: An error's type (GenAI: its presence alone means the operation failed).
ERROR_TYPE_KEYS = ("error.type", "exception.type")
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name")
#: Text describing an agent's task when content may not be shown (else the span name).
TASK_KEYS = ("gen_ai.agent.description",)
#: Content (kept only when capture is on): input, then output, per kind.
INPUT_KEYS = ("gen_ai.input.messages", "gen_ai.prompt", "input.value", "gen_ai.tool.call.arguments")
OUTPUT_KEYS = (
    "gen_ai.output.messages",
    "gen_ai.completion",
    "output.value",
    "gen_ai.tool.call.result",
)
#: Content-bearing attributes, never kept among a span's attributes when capture is off (and
#: not duplicated when it is on): exact keys, then prefixes.
CONTENT_KEYS = frozenset(
    {
        *INPUT_KEYS,
        *OUTPUT_KEYS,
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "input.mime_type",
        "output.mime_type",
        "final_result",
        "pydantic_ai.all_messages",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "llm.invocation_parameters",
        "tool.parameters",
        "model_request_parameters",
        "logfire.json_schema",
        "logfire.msg",
        "metadata",
    }
)
CONTENT_PREFIXES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.tools.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "retrieval.documents.",
    "reranker.",
    "embedding.embeddings.",
    "message.",
)
#: Attributes read by the mapping (not repeated among the kept ones).
MAPPED_KEYS = frozenset(
    {
        OPERATION,
        OI_KIND,
        *AGENT_NAME_KEYS,
        GRAPH_PARENT_ID,
        *MODEL_RESPONSE_KEYS,
        *MODEL_REQUEST_KEYS,
        *INPUT_TOKEN_KEYS,
        *OUTPUT_TOKEN_KEYS,
        *COST_KEYS,
        "error.type",
        *TOOL_NAME_KEYS,
    }
)
#: Every attribute the table reads (a span's keys are intersected with it once).
USAGE_KEYS = frozenset({*INPUT_TOKEN_KEYS, *OUTPUT_TOKEN_KEYS, *COST_KEYS})
_GRAPH_KEYS = frozenset({GRAPH_NODE_ID, "graph.node.name", GRAPH_PARENT_ID})
_MODEL_KEYS = frozenset({*MODEL_RESPONSE_KEYS, *MODEL_REQUEST_KEYS})
KNOWN_KEYS = frozenset(
    {*MAPPED_KEYS, "graph.node.name", *TASK_KEYS, *INPUT_KEYS, *OUTPUT_KEYS, "error.type"}
)
#: Error types that mean "stopped", not "failed" (the registry does not count them).
CANCELLED_ERROR_TYPES = frozenset(
    {"CancelledError", "asyncio.CancelledError", "asyncio.exceptions.CancelledError",
     "KeyboardInterrupt", "cancelled", "canceled"}
)  # fmt: skip
#: Span names of a handoff from one agent to another, followed by the target's name.
HANDOFF_PREFIXES = ("handoff to ", "transfer_to_")

MAX_ATTRIBUTES = 32
"""Attributes kept per span besides the mapped ones (the rest are counted in ``dropped``)."""
MAX_ATTRIBUTE_TEXT = 256
"""Characters kept of one kept attribute's text (content has its own limit)."""
MAX_NAME = 128

# Field → (attributes read, first present wins; what we chose where the vocabularies disagree).
MAPPING: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("kind", (OPERATION, OI_KIND, GRAPH_NODE_ID),
     "gen_ai.operation.name first, then openinference.span.kind; a span with graph.node.* and "
     "no other kind (or CHAIN) is an agent; anything else is 'other'"),
    ("agent", AGENT_NAME_KEYS,
     "graph.node.name before graph.node.id; else 'invoke_agent X' → X; else an agent span's "
     "name. On a span that is not an agent, gen_ai.agent.name / agent.name attribute it"),
    ("delegator", (GRAPH_PARENT_ID,),
     "graph.node.parent_id (an id, mapped back to its node's name); else a handoff span's "
     "source; else the nearest agent ancestor"),
    ("model_response", MODEL_RESPONSE_KEYS,
     "gen_ai.response.model first; OpenInference's single llm.model_name is taken as both"),
    ("model_request", MODEL_REQUEST_KEYS, "gen_ai.request.model first"),
    ("prompt_tokens", INPUT_TOKEN_KEYS,
     "gen_ai.usage.input_tokens, then the older prompt_tokens, then llm.token_count.prompt"),
    ("completion_tokens", OUTPUT_TOKEN_KEYS,
     "gen_ai.usage.output_tokens, then completion_tokens, then llm.token_count.completion"),
    ("cost_usd", COST_KEYS, "llm.cost.total; else absent (priced later by model)"),
    ("error_type", ERROR_TYPE_KEYS,
     "status ERROR or error.type means failed; type from error.type, else the first exception "
     "event's exception.type; message from the status, else the exception's message"),
    ("tool", TOOL_NAME_KEYS, "gen_ai.tool.name before tool.name; else the span name"),
    ("task", TASK_KEYS, "the span name (content-free) unless gen_ai.agent.description is set"),
    ("input", INPUT_KEYS, "content: kept per capture_content"),
    ("output", OUTPUT_KEYS, "content: kept per capture_content"),
)  # fmt: skip


class Norm:
    """What one span means, in our vocabulary (see :data:`MAPPING`)."""

    __slots__ = (
        "agent",
        "agent_named",
        "attributes",
        "completion_tokens",
        "cost_usd",
        "dropped",
        "error",
        "error_type",
        "handoff_to",
        "input",
        "kind",
        "model_request",
        "model_response",
        "node_id",
        "output",
        "parent_node",
        "prompt_tokens",
        "semantic",
        "status",
        "task",
        "tool",
    )

    def __init__(self) -> None:
        self.kind = "other"
        self.semantic = False
        """True when the span carries either vocabulary (an HTTP span does not)."""
        self.agent: str | None = None
        """For an agent span, its agent; for another span, the agent it names (if any)."""
        self.agent_named = False
        """True when ``agent`` came from an attribute, not from the span's name."""
        self.node_id: str | None = None
        self.parent_node: str | None = None
        self.handoff_to: str | None = None
        self.task: str | None = None
        self.tool: str | None = None
        self.model_request: str | None = None
        self.model_response: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cost_usd: float | None = None
        self.status = "ok"
        self.error_type: str | None = None
        self.error: str | None = None
        self.input: str | None = None
        self.output: str | None = None
        self.attributes: dict[str, Any] = {}
        self.dropped = 0

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"

    @property
    def has_usage(self) -> bool:
        return (
            self.prompt_tokens is not None
            or self.completion_tokens is not None
            or self.cost_usd is not None
        )


# -- helpers ---------------------------------------------------------------------------------
def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value: Any, limit: int = MAX_NAME) -> str | None:
    """A printable one-line text, cut at ``limit``; None for nothing usable."""
    if value is None:
        return None
    if type(value) is str and len(value) <= limit and value.isprintable():
        return value.strip() or None  # the common case, in three C calls
    if not isinstance(value, str):
        if isinstance(value, (list, tuple)):
            return None
        value = str(value)
    value = value.strip()
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else " " for ch in value).strip()
    if not value:
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _count(value: Any) -> int | None:
    """A token count: a non-negative whole number (int, integral float or numeric text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int):
        return value if 0 <= value < 2**53 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value) if value < 2**53 else None
    return None


def _money(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def clip(text: str, limit: int = MAX_STRING) -> str:
    """``text`` cut to ``limit`` characters (a marker included) and safe to encode as UTF-8
    (lone surrogates, which Python strings may hold, replaced): what an event's data may hold
    without being validated again (:class:`~codeur_widgets.core.events.Event` rules)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if len(text) > limit:
        marker = f"…[truncated {len(text) - limit} chars]"
        text = text[: limit - len(marker)] + marker
    return text


def _content(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        try:
            value = json.dumps(value, default=str)
        except (TypeError, ValueError):
            value = str(value)
    return clip(value, min(CONTENT_LIMIT, MAX_STRING))


def safe_value(value: Any) -> Any:
    """A JSON-safe, bounded copy of one attribute value (NaN and infinities become text)."""
    t = type(value)
    if t is str:
        if value.isascii():
            return value if len(value) <= MAX_ATTRIBUTE_TEXT else value[:MAX_ATTRIBUTE_TEXT] + "…"
        return clip(value, MAX_ATTRIBUTE_TEXT)
    if t is bool or t is int:
        return value if t is bool or -(2**63) <= value < 2**63 else str(value)
    if t is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [safe_value(v) for v in value[:16]]
    if isinstance(value, bytes):
        return value[:64].hex()
    return _text(value, MAX_ATTRIBUTE_TEXT)


def _is_content(key: str) -> bool:
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


# Attributes the table knows that are neither read by the mapping nor content: kept, as the
# attributes it does not know are (normalize skips _kept only when a span has neither).
_KEPT_KNOWN = frozenset(k for k in KNOWN_KEYS if k not in MAPPED_KEYS and not _is_content(k))


# -- the normaliser --------------------------------------------------------------------------
def normalize(record: SpanRecord, capture_content: bool) -> Norm:
    """What ``record`` means: kind, agent, model, usage, error, content, kept attributes."""
    attrs = record.attributes
    n = Norm()
    name = record.name or ""

    # Only the attributes the table knows are looked up, and a group of them only when the span
    # has one (`hit`): most spans carry a few, and an absent one costs a look-up and a call.
    hit = KNOWN_KEYS.intersection(attrs)  # half the cost of `attrs.keys() & KNOWN_KEYS`
    kind = None
    oi_kind = None
    node_id = None
    if hit:
        operation = attrs.get(OPERATION)
        oi_kind = attrs.get(OI_KIND)
        if isinstance(operation, str) and operation:
            kind = GENAI_OPERATIONS.get(operation, "other")
        if kind is None and isinstance(oi_kind, str) and oi_kind:
            kind = OPENINFERENCE_KINDS.get(oi_kind.upper(), "other")
        if not hit.isdisjoint(_GRAPH_KEYS):
            node_id = _text(attrs.get(GRAPH_NODE_ID))
            node_name = _text(attrs.get("graph.node.name"))
            graph_node = node_id or node_name
            if graph_node and kind in (None, "other") and oi_kind not in ("LLM", "TOOL"):
                kind = "agent"
            n.parent_node = _text(attrs.get(GRAPH_PARENT_ID))
    if name[:1] in "hHtT":
        lowered = name.lower()
        for prefix in HANDOFF_PREFIXES:
            if lowered.startswith(prefix) and len(name) > len(prefix):
                n.handoff_to = _text(name[len(prefix) :])
                kind = kind or "tool"
                break
    has_name = bool(hit) and not hit.isdisjoint(AGENT_NAME_KEYS)
    n.semantic = kind is not None or has_name
    n.kind = kind = kind or "other"
    n.node_id = node_id

    named = _text(_first(attrs, AGENT_NAME_KEYS)) if has_name else None
    if kind == "agent":
        if named:
            n.agent, n.agent_named = named, True
        elif name.startswith("invoke_agent ") and len(name) > 13:
            n.agent = _text(name[13:])
        else:
            n.agent = _text(name) or "agent"
        task = _text(_first(attrs, TASK_KEYS), 500) if not hit.isdisjoint(TASK_KEYS) else None
        n.task = task or _text(name, 500)
    elif named:
        n.agent, n.agent_named = named, True
    if kind == "tool":
        tool = _text(_first(attrs, TOOL_NAME_KEYS)) if not hit.isdisjoint(TOOL_NAME_KEYS) else None
        n.tool = tool or _text(name)

    if hit:
        if not hit.isdisjoint(_MODEL_KEYS):
            n.model_response = _text(_first(attrs, MODEL_RESPONSE_KEYS))
            n.model_request = _text(_first(attrs, MODEL_REQUEST_KEYS))
        if not hit.isdisjoint(USAGE_KEYS):
            n.prompt_tokens = _count(_first(attrs, INPUT_TOKEN_KEYS))
            n.completion_tokens = _count(_first(attrs, OUTPUT_TOKEN_KEYS))
            if not hit.isdisjoint(COST_KEYS):
                n.cost_usd = _money(_first(attrs, COST_KEYS))

    # Errors: the status, GenAI's error.type, and the first exception event.
    error_type = _text(attrs.get("error.type")) if "error.type" in hit else None
    message = _text(record.status_message, 2000) if record.status_message else None
    failed = record.status_code == STATUS_ERROR or error_type is not None
    if failed:
        for event in record.events:
            if event.name == "exception":
                error_type = error_type or _text(event.attributes.get("exception.type"))
                message = message or _text(event.attributes.get("exception.message"), 2000)
                break
        n.error_type = error_type or "Error"
        n.error = message or n.error_type
        n.status = "cancelled" if n.error_type in CANCELLED_ERROR_TYPES else "error"

    if capture_content:
        if n.kind == "tool":
            n.input = _content(attrs.get("gen_ai.tool.call.arguments") or attrs.get("input.value"))
            n.output = _content(attrs.get("gen_ai.tool.call.result") or attrs.get("output.value"))
        else:
            n.input = _content(_first(attrs, INPUT_KEYS))
            n.output = _content(_first(attrs, OUTPUT_KEYS))

    if len(attrs) > len(hit) or not hit.isdisjoint(_KEPT_KNOWN):  # some are kept (bounded)
        n.attributes, n.dropped = _kept(attrs)
    return n


def _kept(attrs: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The attributes the mapping does not read and that are not content, JSON-safe and
    bounded, and how many were dropped past :data:`MAX_ATTRIBUTES` or for a bad key."""
    kept: dict[str, Any] = {}
    dropped = 0
    skip = MAPPED_KEYS
    for key, value in attrs.items():
        if key in skip or _is_content(key):
            continue
        if len(kept) >= MAX_ATTRIBUTES or not isinstance(key, str) or len(key) > MAX_NAME:
            dropped += 1
            continue
        kept[key if key.isascii() else clip(key)] = safe_value(value)
    return kept, dropped
