"""Everything a page receives over the network, read through the DevTools protocol (CDP).

Gradio 6 streams event updates over `fetch` on `/gradio_api/queue/data` (server-sent events read with a
ReadableStream), so a finished response body comes too late and `page.on("response")` alone cannot see the
updates as they arrive. `Network.streamResourceContent` makes Chromium hand over each chunk of a streaming
body in `Network.dataReceived` (plus what was buffered before it was asked); ordinary bodies are read with
`Network.getResponseBody` when they finish; websocket frames and EventSource messages have their own events.
Every chunk gets a sequence number, so a test can ask for what arrived after a point (`mark()` / `since()`).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import CDPSession, Page, Response


@dataclass
class Chunk:
    """One piece of data the page received."""

    seq: int
    request_id: str
    kind: str  # "body" (a whole response), "stream" (part of a streamed body), "ws", "eventsource"
    data: bytes


@dataclass
class NetworkCapture:
    """Records every byte the page receives; attach before the first navigation."""

    cdp: CDPSession
    chunks: list[Chunk] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)  # request id -> url
    mime: dict[str, str] = field(default_factory=dict)  # request id -> mime type
    streamed: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    seen_by_playwright: list[str] = field(default_factory=list)  # every response url page.on("response") saw
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def attach(cls, page: Page) -> NetworkCapture:
        """Start capturing on `page` (call before `page.goto`)."""
        cdp = page.context.new_cdp_session(page)
        capture = cls(cdp)
        cdp.on("Network.responseReceived", capture._on_response)
        cdp.on("Network.dataReceived", capture._on_data)
        cdp.on("Network.loadingFinished", capture._on_finished)
        cdp.on("Network.webSocketFrameReceived", capture._on_ws)
        cdp.on("Network.eventSourceMessageReceived", capture._on_eventsource)
        # big buffers so no body is evicted before it is read
        cdp.send("Network.enable", {"maxTotalBufferSize": 200_000_000, "maxResourceBufferSize": 50_000_000})
        page.on("response", capture._on_playwright_response)
        return capture

    def _add(self, request_id: str, kind: str, data: bytes) -> None:
        with self._lock:
            self.chunks.append(Chunk(len(self.chunks), request_id, kind, data))

    def _on_response(self, event: dict[str, Any]) -> None:
        rid, response = event["requestId"], event["response"]
        self.urls[rid] = response["url"]
        self.mime[rid] = response.get("mimeType", "")
        if self.mime[rid] == "text/event-stream":
            try:
                result = self.cdp.send("Network.streamResourceContent", {"requestId": rid})
            except Exception as exc:  # the stream may already be over (a short heartbeat): read it when it ends
                self.failures.append(f"streamResourceContent {response['url']}: {exc}")
                return
            self.streamed.add(rid)
            self._add(rid, "stream", base64.b64decode(result.get("bufferedData", "")))

    def _on_data(self, event: dict[str, Any]) -> None:
        if event.get("data"):
            self._add(event["requestId"], "stream", base64.b64decode(event["data"]))

    def _on_finished(self, event: dict[str, Any]) -> None:
        rid = event["requestId"]
        if rid in self.streamed or rid not in self.urls:
            return
        try:
            body = self.cdp.send("Network.getResponseBody", {"requestId": rid})
        except Exception as exc:  # e.g. a 204, or a redirect: no body to read
            self.failures.append(f"getResponseBody {self.urls[rid]}: {exc}")
            return
        raw = base64.b64decode(body["body"]) if body.get("base64Encoded") else body["body"].encode("utf-8")
        self._add(rid, "body", raw)

    def _on_ws(self, event: dict[str, Any]) -> None:
        self._add(event["requestId"], "ws", event["response"].get("payloadData", "").encode("utf-8"))

    def _on_eventsource(self, event: dict[str, Any]) -> None:
        self._add(event["requestId"], "eventsource", event.get("data", "").encode("utf-8"))

    def _on_playwright_response(self, response: Response) -> None:
        self.seen_by_playwright.append(response.url)

    def mark(self) -> int:
        """A point in the capture: `since(mark)` returns what arrived after it."""
        with self._lock:
            return len(self.chunks)

    def since(self, mark: int = 0) -> list[Chunk]:
        """The chunks received after `mark`."""
        with self._lock:
            return self.chunks[mark:]

    def text(self, mark: int = 0) -> str:
        """Everything received after `mark`, as text: raw, plus every JSON string found in it, decoded."""
        per_request: dict[tuple[str, str], bytearray] = {}
        for chunk in self.since(mark):
            per_request.setdefault((chunk.request_id, chunk.kind), bytearray()).extend(chunk.data)
        parts = []
        for data in per_request.values():
            raw = data.decode("utf-8", errors="replace")
            parts.append(raw)
            parts.extend(json_strings(raw))
        return "\n".join(parts)

    def sse_messages(self, mark: int = 0) -> list[dict[str, Any]]:
        """The JSON messages of every server-sent event stream received after `mark`, in order."""
        per_request: dict[str, bytearray] = {}
        for chunk in self.since(mark):
            if chunk.kind == "stream":
                per_request.setdefault(chunk.request_id, bytearray()).extend(chunk.data)
        messages = []
        for data in per_request.values():
            for line in data.decode("utf-8", errors="replace").splitlines():
                if line.startswith("data:"):
                    try:
                        messages.append(json.loads(line[5:]))
                    except json.JSONDecodeError:
                        continue
        return messages

    def uncaptured(self) -> list[str]:
        """Response urls Playwright saw for which CDP captured no bytes at all (should be none with a body)."""
        captured = {self.urls[c.request_id] for c in self.since(0) if c.request_id in self.urls}
        return [u for u in self.seen_by_playwright if u not in captured and not u.startswith("data:")]


def json_strings(raw: str) -> Iterator[str]:
    """Every string inside the JSON documents of `raw` (a JSON body, or SSE `data:` lines), unescaped."""
    candidates = [raw]
    candidates += [line[5:] for line in raw.splitlines() if line.startswith("data:")]
    for candidate in candidates:
        try:
            doc = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        yield from _strings(doc)


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield key
            yield from _strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _strings(value)
