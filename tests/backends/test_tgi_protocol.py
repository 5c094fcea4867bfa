"""TGI's validation rules and error shapes as pure functions."""

from __future__ import annotations

import pytest

from backends.tgi_protocol import (
    GenerationCrashed,
    InvalidRequest,
    Limits,
    Overloaded,
    TemplateMissing,
    check_lengths,
    parse_generate,
    sse,
)

LIMITS = Limits(max_input_tokens=100, max_total_tokens=150)


def test_error_shapes_and_statuses() -> None:
    assert (Overloaded().status, Overloaded().body()) == (
        429,
        {"error": "Model is overloaded", "error_type": "overloaded"},
    )
    crashed = GenerationCrashed("Request failed during generation: boom")
    assert (crashed.status, crashed.body()["error_type"]) == (424, "generation")
    missing = TemplateMissing("Template error: template not found")
    assert (missing.status, missing.body()["error_type"]) == (422, "template_error")
    assert InvalidRequest("x").body() == {"error": "Input validation error: x", "error_type": "validation"}


def test_sampling_is_on_only_when_a_sampling_parameter_asks_for_it() -> None:
    assert not parse_generate({"inputs": "a"}, LIMITS, full_text_default=False).params.do_sample
    assert parse_generate(
        {"inputs": "a", "parameters": {"temperature": 0.5}}, LIMITS, full_text_default=False
    ).params.do_sample
    assert parse_generate(
        {"inputs": "a", "parameters": {"do_sample": True}}, LIMITS, full_text_default=False
    ).params.do_sample


def test_return_full_text_default_depends_on_the_route() -> None:
    assert parse_generate({"inputs": "a"}, LIMITS, full_text_default=True).return_full_text
    assert not parse_generate({"inputs": "a"}, LIMITS, full_text_default=False).return_full_text


@pytest.mark.parametrize(
    ("tokens", "new", "message"),
    [(101, 1, "must have less than 100 tokens. Given: 101"), (90, 61, "must be <= 150. Given: 90 `inputs` tokens")],
)
def test_length_rules(tokens: int, new: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_lengths(tokens, new, LIMITS)
    check_lengths(100, 50, LIMITS)


def test_truncate_range_and_types() -> None:
    for params in ({"truncate": 0}, {"truncate": 101}, {"seed": -1}, {"max_new_tokens": "ten"}, {"stop": "x"}):
        with pytest.raises(InvalidRequest):
            parse_generate({"inputs": "a", "parameters": params}, LIMITS, full_text_default=False)


def test_sse_framing_is_compact_with_a_space_after_data() -> None:
    assert sse({"a": 1, "b": "é"}) == 'data: {"a":1,"b":"é"}\n\n'.encode()
    assert sse("[DONE]") == b"data: [DONE]\n\n"
