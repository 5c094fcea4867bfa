"""Fixtures of the peer tests: real inference servers on loopback serving the real default model.

`peer` is one shared server per peer for the whole session (pytest groups the tests by peer, so one runs at a
time); a test that kills or breaks its server takes `private_peer`, or `peer_factory` for other options.
Without the llama.cpp environment its cases are skipped, except under CI=true where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.default_model import find_gguf
from benchmarks.postgres import in_ci
from tests.peers.servers import PEER_IDS, PEERS, Peer, PeerUnavailable, start_peer

PeerFactory = Callable[..., Peer]


def _model_for(request: pytest.FixtureRequest, peer_id: str) -> Path:
    """What the peer serves: the converted folder (built through the app's own code) or the wheel's GGUF file."""
    if PEERS[peer_id].serves == "gguf":
        return find_gguf().path
    folder: Path = request.getfixturevalue("smollm2")
    return folder


def _start(request: pytest.FixtureRequest, peer_id: str, workdir: Path, **options: Any) -> Peer:
    try:
        return start_peer(peer_id, _model_for(request, peer_id), workdir, **options)
    except PeerUnavailable as exc:
        if in_ci(os.environ):
            pytest.fail(f"CI runs the {peer_id} peer cases but it cannot start: {exc}", pytrace=False)
        pytest.skip(f"{peer_id} peer cases skipped: {exc}")


@pytest.fixture(scope="session", params=PEER_IDS)
def peer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """A peer server shared by every test of the session (do not kill it: use `private_peer`)."""
    server = _start(request, request.param, tmp_path_factory.mktemp(f"peer-{request.param}"))
    yield server
    server.stop()


@pytest.fixture
def peer_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PeerFactory]:
    """Start private peers: `peer_factory(peer_id, context=..., threads=...)`; all are stopped after the test."""
    started: list[Peer] = []

    def start(peer_id: str, **options: Any) -> Peer:
        server = _start(request, peer_id, tmp_path / f"{peer_id}-{len(started)}", **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=PEER_IDS)
def private_peer(request: pytest.FixtureRequest, peer_factory: PeerFactory) -> Peer:
    """A peer started for this test alone, which it may kill."""
    return peer_factory(request.param)
