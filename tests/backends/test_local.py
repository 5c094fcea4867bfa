"""The local backend on the real tiny demo models (transformers + peft), no mocks."""

from __future__ import annotations

import asyncio

import pytest

from backends.base import GenerationParams, InputTooLong, Message
from backends.demo import DemoModels
from backends.local import LocalBackend, LocalModelPool, LocalSpec, ModelLoadError

QUESTION = [Message(role="user", content="Bonjour, qui es-tu ?")]
SEEDED = GenerationParams(max_new_tokens=40, seed=11, temperature=0.9)


async def collect(backend: LocalBackend, params: GenerationParams = SEEDED) -> tuple[str, int, int]:
    chunks = [c async for c in backend.stream(QUESTION, params)]
    return "".join(c.text for c in chunks), sum(c.tokens for c in chunks), len(chunks)


def test_streams_in_several_chunks(local_backends: dict[str, LocalBackend]) -> None:
    text, tokens, n_chunks = asyncio.run(collect(local_backends["demo-base"]))
    assert text and n_chunks > 1
    assert 1 <= tokens <= SEEDED.max_new_tokens


def test_same_seed_repeats_and_lora_variants_differ(local_backends: dict[str, LocalBackend]) -> None:
    texts = {
        name: asyncio.run(collect(local_backends[name]))[0] for name in ("demo-base", "demo-lora-a", "demo-lora-b")
    }
    assert asyncio.run(collect(local_backends["demo-lora-a"]))[0] == texts["demo-lora-a"]
    assert len(set(texts.values())) == 3


def test_concurrent_requests_for_different_adapters_do_not_interfere(local_backends: dict[str, LocalBackend]) -> None:
    names = ["demo-base", "demo-lora-a", "demo-lora-b", "demo-lora-a"]
    alone = [asyncio.run(collect(local_backends[n]))[0] for n in names]

    async def together() -> list[str]:
        results = await asyncio.gather(*(collect(local_backends[n]) for n in names))
        return [r[0] for r in results]

    assert asyncio.run(together()) == alone


def test_variants_share_one_base_model(demo_models: DemoModels) -> None:
    pool = LocalModelPool()
    try:
        backends = pool.load(
            [
                LocalSpec("b", str(demo_models.base)),
                LocalSpec("x", str(demo_models.base), str(demo_models.adapters["lora-a"])),
                LocalSpec("y", str(demo_models.base), str(demo_models.adapters["lora-b"])),
            ]
        )
        assert len(pool) == 1 and set(backends) == {"b", "x", "y"}
    finally:
        pool.close()


def test_a_base_model_alone_streams(demo_models: DemoModels) -> None:
    pool = LocalModelPool()
    try:
        alone = pool.load([LocalSpec("solo", str(demo_models.base))])["solo"]
        text, tokens, _ = asyncio.run(collect(alone))
        assert text and tokens
    finally:
        pool.close()


def test_prompt_uses_the_tokenizer_chat_template(local_backends: dict[str, LocalBackend]) -> None:
    assert local_backends["demo-base"].render(QUESTION) == (
        "<|im_start|>user\nBonjour, qui es-tu ?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_request_beyond_the_context_is_input_too_long(local_backends: dict[str, LocalBackend]) -> None:
    with pytest.raises(InputTooLong):
        asyncio.run(collect(local_backends["demo-base"], SEEDED.model_copy(update={"max_new_tokens": 4000})))


def test_stop_string_ends_the_reply(local_backends: dict[str, LocalBackend]) -> None:
    full, _, _ = asyncio.run(collect(local_backends["demo-base"]))
    stop = full[5:8]
    cut, _, _ = asyncio.run(collect(local_backends["demo-base"], SEEDED.model_copy(update={"stop": (stop,)})))
    assert cut == full[: full.index(stop)]


def test_missing_adapter_is_one_sentence(demo_models: DemoModels, tmp_path: object) -> None:
    pool = LocalModelPool()
    with pytest.raises(ModelLoadError, match="Model 'x': could not load adapter"):
        pool.load([LocalSpec("x", str(demo_models.base), "/nonexistent/adapter")])
    pool.close()


def test_consumers_that_leave_early_do_not_break_the_shared_decoder(local_backends: dict[str, LocalBackend]) -> None:
    async def first_chunk() -> str:
        async for chunk in local_backends["demo-lora-b"].stream(QUESTION, SEEDED):
            return chunk.text
        return ""

    for _ in range(3):
        asyncio.run(first_chunk())  # each run closes its loop while the decoder may still be posting to it
    assert asyncio.run(collect(local_backends["demo-base"]))[0]
