"""Stop-string matching and incremental detokenisation."""

from __future__ import annotations

from transformers import AutoTokenizer

from backends.demo import DemoModels
from backends.streaming import IncrementalDecoder, StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    return "".join(matcher.feed(p) for p in pieces) + matcher.flush()


def test_stop_string_split_across_chunks_is_cut() -> None:
    m = StopMatcher(["</s>", "### Human:"])
    assert feed_all(m, ["Hello ", "wor", "ld<", "/", "s>more"]) == "Hello world"
    assert m.stopped


def test_text_that_only_looks_like_a_stop_start_is_released() -> None:
    assert feed_all(StopMatcher(["###"]), ["a #", "# b", " c"]) == "a ## b c"


def test_no_stops_passes_everything() -> None:
    assert feed_all(StopMatcher([]), ["a", "b"]) == "ab"


def test_invalid_byte_runs_are_released_after_a_few_tokens(demo_models: DemoModels) -> None:
    tok = AutoTokenizer.from_pretrained(demo_models.base)
    lone_bytes = [i for i in range(len(tok)) if tok.decode([i]) == "\ufffd"][:40]  # continuation bytes alone
    assert len(lone_bytes) >= 20
    dec = IncrementalDecoder(tok)
    released = [dec.add(i) for i in lone_bytes]
    assert sum(1 for r in released if r) >= len(lone_bytes) // 8, "invalid bytes must not be held forever"


def test_incremental_decoding_equals_full_decoding(demo_models: DemoModels) -> None:
    tok = AutoTokenizer.from_pretrained(demo_models.base)
    text = "Bonjour ! 你好，世界。안녕하세요 — café"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    dec = IncrementalDecoder(tok)
    assert "".join(dec.add(i) for i in ids) == tok.decode(ids)
