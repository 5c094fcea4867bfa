"""A scripted misbehaving HTTP server on loopback, for fault tests: it hangs, dies mid-stream, sends bad SSE …

It is a real server on 127.0.0.1 speaking raw HTTP/1.1 over asyncio, so clients go through their whole real
network path; only its behaviour is scripted.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

EVENT: dict[str, Any] = {
    "index": 1,
    "token": {"id": 5, "text": "Hi", "logprob": -0.1, "special": False},
    "generated_text": None,
}


@dataclass
class FaultServer:
    """Serves one behaviour (`mode`) for every POST; GET /health answers `health_status`."""

    mode: str = "ok"
    text: str = "Hi"  # what mode "ok" streams, one word per token
    health_status: int = 200
    port: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        """Start serving on a background thread."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            self.seen_headers.append(headers)
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            if method == "GET":
                await self._get(path, writer)
            else:
                await self._post(writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _get(self, path: str, writer: asyncio.StreamWriter) -> None:
        if path.startswith("/health"):
            await _respond(writer, self.health_status, b"" if self.health_status == 200 else b'{"error":"unhealthy"}')
        elif path.startswith("/v1/models"):
            await _respond(writer, self.health_status, json.dumps({"object": "list", "data": []}).encode())
        else:
            await _respond(writer, 404, b"{}")

    async def _post(self, writer: asyncio.StreamWriter) -> None:
        if self.mode == "hang":
            await asyncio.sleep(3600)
        elif self.mode == "validation":
            body = {
                "error": "Input validation error: `inputs` must have less than 10 tokens. Given: 99",
                "error_type": "validation",
            }
            await _respond(writer, 422, json.dumps(body).encode())
        elif self.mode == "http429":
            await _respond(
                writer, 429, json.dumps({"error": "Model is overloaded", "error_type": "overloaded"}).encode()
            )
        else:
            await self._stream(writer)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        if self.mode == "overloaded_event":
            writer.write(_event({"error": "Model is overloaded", "error_type": "overloaded"}))
        elif self.mode == "malformed":
            writer.write(b"data: {not json\n\n")
        elif self.mode in ("die_mid_stream", "stall_mid_stream"):
            for _ in range(2):
                writer.write(_event(EVENT))
                await writer.drain()
                await asyncio.sleep(0.05)
            if self.mode == "stall_mid_stream":
                await asyncio.sleep(3600)
            writer.transport.abort()  # the process died: the connection drops with no final event
            return
        else:
            words = [w + " " for w in self.text.split(" ")]
            words[-1] = words[-1].rstrip(" ")
            for i, word in enumerate(words, start=1):
                last = i == len(words)
                event = {**EVENT, "index": i, "token": {**EVENT["token"], "text": word}}
                if last:
                    event.update(generated_text=self.text, details={"finish_reason": "length", "generated_tokens": i})
                writer.write(_event(event))
        await writer.drain()


def _event(payload: Any) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    reason = {200: "OK", 404: "Not Found", 422: "Unprocessable Entity", 429: "Too Many Requests"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
