"""The battle service with real tiny models and a real SQLite file."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from arena.battle import BattleService, leak_notice
from arena.config import AppConfig, parse_config
from arena.domain import BattleMode, BattleState, Outcome, ReplyStatus, Side, VoteFilter, Voter
from arena.errors import InputRejected, UserError, VoteRefused
from arena.language import LanguageDetector
from arena.leaks import DEFAULT_IDENTITY_WORDS, LeakDetector
from arena.limits import RateLimiter, RateLimits
from arena.matchmaking import Matchmaker
from arena.store.facade import AsyncStore
from arena.store.repository import Repository
from arena.turns import Guards
from backends.base import GenerationParams
from backends.local import LocalBackend
from backends.tgi import TgiBackend
from tests.support.faults import FaultServer
from tests.support.store_reads import reads

VOTER = Voter(session_id="sess-1", ip_hash="iphash")


def guards(config: AppConfig, *, messages_per_minute: int = 0, votes_per_hour: int = 0) -> Guards:
    names = [n for m in config.models for n in (m.name, *m.aliases)]
    return Guards(
        leaks=LeakDetector(names, DEFAULT_IDENTITY_WORDS),
        limiter=RateLimiter(RateLimits(messages_per_minute, votes_per_hour)),
        language=LanguageDetector(),
    )


@pytest.fixture
def service(demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository) -> BattleService:
    matchmaker = Matchmaker(demo_config, random.Random(3), repo.pair_outcomes)
    return BattleService(
        config=demo_config,
        backends=local_backends,
        store=AsyncStore(repo),
        matchmaker=matchmaker,
        guards=guards(demo_config),
    )


def pair(a: str, b: str) -> BattleState:
    return BattleState(models={Side.A: a, Side.B: b}, session_id=VOTER.session_id)


async def ask_all(service: BattleService, state: BattleState, text: str) -> list[tuple[str, str]]:
    """Run one round; return the pane texts seen at each update."""
    return [(s.replies[Side.A].text, s.replies[Side.B].text) async for s in service.ask(state, text, VOTER)]


def test_round_streams_both_sides_then_vote_reveals_and_stores(service: BattleService, repo: Repository) -> None:
    state = pair("demo-lora-a", "demo-lora-b")
    updates = asyncio.run(ask_all(service, state, "Salut !"))
    assert len(updates) > 2
    assert any(a and b for a, b in updates[:-1]), "both panes should show text before the round ends"
    assert state.votable and state.turns == 1
    contestants = asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert (contestants[Side.A].name, contestants[Side.B].name) == ("demo-lora-a", "demo-lora-b")
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.status == "voted"
    assert stored.conversations[Side.A][1].content == state.replies[Side.A].text
    assert stored.conversations[Side.B][1].ttft_ms is not None
    [vote] = reads(repo).votes()
    assert vote.outcome is Outcome.A and vote.anonymous and vote.ip_hash == "iphash"


def test_vote_while_streaming_is_refused(service: BattleService, repo: Repository) -> None:
    async def scenario() -> str:
        state = pair("demo-base", "demo-lora-a")
        stream = service.ask(state, "Bonjour", VOTER)
        await anext(stream)
        try:
            await service.vote(state, Outcome.B, VOTER)
        except VoteRefused as exc:
            return str(exc)
        finally:
            async for _ in stream:
                pass
        return "accepted"

    assert asyncio.run(scenario()) == "Please wait until both answers are finished before voting."
    assert reads(repo).votes() == []


def test_second_vote_and_other_session_are_refused(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-b")
    asyncio.run(ask_all(service, state, "Hello"))
    with pytest.raises(VoteRefused, match="another session"):
        asyncio.run(service.vote(state, Outcome.A, Voter(session_id="intruder")))
    asyncio.run(service.vote(state, Outcome.TIE, VOTER))
    with pytest.raises(VoteRefused, match="already voted"):
        asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert [v.outcome for v in reads(repo).votes()] == [Outcome.TIE]


def test_follow_up_after_reveal_is_a_named_vote_on_the_next_round(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-b")
    asyncio.run(ask_all(service, state, "One"))
    asyncio.run(service.vote(state, Outcome.A, VOTER))
    asyncio.run(ask_all(service, state, "Two"))
    assert state.histories[Side.A][2] == {"role": "user", "content": "Two"}
    asyncio.run(service.vote(state, Outcome.BOTH_BAD, VOTER))
    assert [(v.turn_index, v.anonymous) for v in reads(repo).votes()] == [(0, True), (1, False)]


def test_backend_error_in_one_pane_leaves_the_other_and_blocks_votes(service: BattleService, repo: Repository) -> None:
    state = pair("demo-lora-a", "too-long")
    asyncio.run(ask_all(service, state, "Hi"))
    a, b = state.replies[Side.A], state.replies[Side.B]
    assert a.status is ReplyStatus.OK and a.text
    assert b.status is ReplyStatus.ERROR
    assert b.error == "The conversation is too long for this model. Please start a new round."
    assert state.errored and not state.votable
    with pytest.raises(VoteRefused, match="ended with an error"):
        asyncio.run(service.vote(state, Outcome.A, VOTER))
    with pytest.raises(InputRejected, match="ended with an error"):
        asyncio.run(ask_all(service, state, "again"))
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.status == "errored" and reads(repo).votes() == []


def test_bad_messages_send_nothing(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-a")
    with pytest.raises(InputRejected, match="type a message first"):
        asyncio.run(ask_all(service, state, "  \n "))
    with pytest.raises(InputRejected, match="the limit is 200"):
        asyncio.run(ask_all(service, state, "x" * 201))
    assert state.battle_id is None and state.turns == 0


def test_turn_limit(service: BattleService) -> None:
    state = pair("demo-base", "demo-lora-a")
    for i in range(3):
        asyncio.run(ask_all(service, state, f"q{i}"))
    with pytest.raises(InputRejected, match="limit of 3 rounds"):
        asyncio.run(ask_all(service, state, "one more"))


def test_a_cancelled_round_is_kept_as_stopped_and_votable(service: BattleService, repo: Repository) -> None:
    async def scenario(state: BattleState) -> None:
        stream = service.ask(state, "Bonjour", VOTER)
        await anext(stream)
        await stream.aclose()  # Gradio cancelling the event (Stop), or the page closing

    state = pair("demo-base", "demo-lora-b")
    asyncio.run(scenario(state))
    assert state.battle_id is not None and not state.streaming and not state.errored and state.votable
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.status == "open"
    assert {m.status for m in stored.conversations[Side.A] if m.role == "assistant"} <= {"stopped", "ok"}


def test_a_second_send_while_the_first_is_starting_is_refused(service: BattleService) -> None:
    async def scenario() -> str:
        state = pair("demo-base", "demo-lora-a")
        first = service.ask(state, "one", VOTER)
        started = asyncio.ensure_future(anext(first))  # runs up to its first await (language detection)
        await asyncio.sleep(0)
        try:
            await anext(service.ask(state, "two", VOTER))
        except InputRejected as exc:
            return str(exc)
        finally:
            await started
            async for _ in first:
                pass
        return "accepted"

    assert asyncio.run(scenario()) == "Please wait until both answers are finished."


def test_regenerate_is_refused_while_a_vote_is_being_written(service: BattleService, repo: Repository) -> None:
    async def scenario() -> str:
        state = pair("demo-base", "demo-lora-a")
        async for _ in service.ask(state, "Hello", VOTER):
            pass
        vote = asyncio.ensure_future(service.vote(state, Outcome.A, VOTER))
        await asyncio.sleep(0)  # the vote has reserved the round and is writing it in a thread
        try:
            async for _ in service.regenerate(state, VOTER):
                pass
        except InputRejected as exc:
            return str(exc)
        finally:
            await vote
        return "regenerated"

    assert asyncio.run(scenario()) == "You already voted on this round, so it can no longer be regenerated."
    assert len(reads(repo).votes()) == 1


def test_a_vote_the_database_cannot_store_is_a_sentence_and_can_be_retried(
    service: BattleService, repo: Repository, db_url: str
) -> None:
    from sqlalchemy import text

    from arena.store.engine import make_engine

    state = pair("demo-base", "demo-lora-a")
    asyncio.run(ask_all(service, state, "Hello"))
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE votes RENAME TO votes_away"))  # a real failure of the next write
    with pytest.raises(VoteRefused, match="could not be saved right now"):
        asyncio.run(service.vote(state, Outcome.A, VOTER))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE votes_away RENAME TO votes"))
    engine.dispose()
    asyncio.run(service.vote(state, Outcome.A, VOTER))  # the round was not burned by the failure
    assert len(reads(repo).votes()) == 1


def test_new_battle_pairs_two_different_configured_models(service: BattleService) -> None:
    for _ in range(20):
        state = service.new_battle(VOTER)
        assert state.models[Side.A] != state.models[Side.B]


# --- arena mechanics: named mode, self-play, regenerate, stop, leaks, language, limits -------------------------


def make_service(
    config: AppConfig, backends: dict[str, Any], repo: Repository, *, seed: int = 3, **limits: int
) -> BattleService:
    matchmaker = Matchmaker(config, random.Random(seed), repo.pair_outcomes)
    return BattleService(
        config=config, backends=backends, store=AsyncStore(repo), matchmaker=matchmaker, guards=guards(config, **limits)
    )


def test_named_battle_votes_are_not_anonymous(service: BattleService, repo: Repository) -> None:
    state = service.new_named_battle(VOTER, "demo-lora-a", "demo-lora-b")
    assert state.mode is BattleMode.NAMED and not state.anonymous
    asyncio.run(ask_all(service, state, "Salut"))
    asyncio.run(service.vote(state, Outcome.A, VOTER))
    [vote] = reads(repo).votes()
    assert not vote.anonymous
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.mode is BattleMode.NAMED and not stored.anonymous
    assert repo.pair_outcomes() == []  # named votes do not count towards ratings
    with pytest.raises(InputRejected, match="choose two of the listed models"):
        service.new_named_battle(VOTER, "demo-lora-a", "nope")


def test_one_model_twice_gives_two_different_samples(service: BattleService) -> None:
    state = service.new_named_battle(VOTER, "demo-base", "demo-base")
    assert state.params[Side.A].seed != state.params[Side.B].seed
    asyncio.run(ask_all(service, state, "Hello"))
    assert state.replies[Side.A].text != state.replies[Side.B].text


def test_a_greedy_model_twice_samples_on_one_side(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository
) -> None:
    greedy = GenerationParams(max_new_tokens=12, temperature=0)  # temperature 0 = greedy
    models = [m.model_copy(update={"generation": greedy}) for m in demo_config.models]
    service = make_service(demo_config.model_copy(update={"models": models}), local_backends, repo)
    state = service.new_named_battle(VOTER, "demo-base", "demo-base")
    assert sorted(p.do_sample for p in state.params.values()) == [False, True]
    asyncio.run(ask_all(service, state, "Hello"))
    assert state.replies[Side.A].text != state.replies[Side.B].text


def test_self_play_is_stored_as_such_and_left_out_of_ratings(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository
) -> None:
    models = [m.model_copy(update={"self_play": m.name == "demo-lora-b"}) for m in demo_config.models]
    arena = demo_config.arena.model_copy(update={"self_play_rate": 1.0})
    config = demo_config.model_copy(update={"models": models, "arena": arena})
    service = make_service(config, local_backends, repo)
    state = service.new_battle(VOTER)
    assert state.mode is BattleMode.SELF_PLAY and state.models == {Side.A: "demo-lora-b", Side.B: "demo-lora-b"}
    assert state.anonymous and state.params[Side.A] != state.params[Side.B]
    asyncio.run(ask_all(service, state, "Hello"))
    asyncio.run(service.vote(state, Outcome.B, VOTER))
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.mode is BattleMode.SELF_PLAY
    assert repo.pair_outcomes() == [] and len(repo.pair_outcomes(VoteFilter(include_self_play=True))) == 1


def test_regenerate_keeps_the_replaced_answers_as_superseded(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-a")
    asyncio.run(ask_all(service, state, "Bonjour"))
    first = dict(state.replies)

    async def regen() -> None:
        async for _ in service.regenerate(state, VOTER):
            pass

    asyncio.run(regen())
    assert state.turns == 1 and state.histories[Side.A][0]["content"] == "Bonjour" and len(state.histories[Side.A]) == 2
    asyncio.run(service.vote(state, Outcome.TIE, VOTER))
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None
    a = [(m.role, m.status, m.content) for m in stored.conversations[Side.A]]
    assert a == [
        ("user", "ok", "Bonjour"),
        ("assistant", "superseded", first[Side.A].text),
        ("assistant", "ok", state.replies[Side.A].text),
    ]
    with pytest.raises(InputRejected, match="already voted on this round"):
        asyncio.run(regen())


def test_stop_keeps_a_votable_stopped_round(service: BattleService, repo: Repository) -> None:
    async def scenario(state: BattleState) -> None:
        stream = service.ask(state, "Raconte une histoire", VOTER)
        await anext(stream)
        service.stop(state)
        await stream.aclose()  # what Gradio's cancel does to the running event

    state = pair("demo-base", "demo-lora-b")
    asyncio.run(scenario(state))
    assert {r.status for r in state.replies.values()} <= {ReplyStatus.STOPPED, ReplyStatus.OK}
    assert state.votable
    asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.status == "voted"
    assert {m.status for m in stored.conversations[Side.A] if m.role == "assistant"} <= {"stopped", "ok"}


def test_identity_leak_is_flagged_live_and_the_vote_does_not_count(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository
) -> None:
    fault = FaultServer(text="Bonjour ! Je suis ChatGPT, un modèle d'OpenAI.").start()
    try:
        leaky = TgiBackend(name="leaky", urls=[fault.url], template="chatml")
        models = [
            *demo_config.models,
            parse_config(
                {"models": [{"name": "leaky", "backend": "tgi", "endpoints": [fault.url], "template": "chatml"}]},
                source=Path("x.yaml"),
            ).models[0],
        ]
        config = demo_config.model_copy(update={"models": models})
        service = make_service(config, {**local_backends, "leaky": leaky}, repo)
        state = pair("demo-base", "leaky")
        updates = asyncio.run(ask_all(service, state, "Qui es-tu ?"))
        assert updates and state.identity_leak == "ChatGPT"
        assert leak_notice(state).startswith("Note: an answer names a model")
        asyncio.run(service.vote(state, Outcome.B, VOTER))
        [vote] = reads(repo).votes()
        assert vote.identity_leak and repo.pair_outcomes() == []
        assert len(repo.pair_outcomes(VoteFilter(include_leaks=True))) == 1
    finally:
        fault.stop()


def test_language_is_stored_per_turn_battle_and_vote(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-a")
    asyncio.run(ask_all(service, state, "Bonjour, pouvez-vous m'expliquer comment faire du pain ?"))
    asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None and stored.language == "French"
    assert stored.conversations[Side.A][0].language == "French"
    assert reads(repo).votes()[0].language == "French"
    assert repo.pair_outcomes(VoteFilter(languages=["French"])) and not repo.pair_outcomes(
        VoteFilter(languages=["English"])
    )


def test_rate_limits_refuse_with_a_sentence(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository
) -> None:
    service = make_service(demo_config, local_backends, repo, messages_per_minute=2, votes_per_hour=1)
    state = pair("demo-base", "demo-lora-a")
    asyncio.run(ask_all(service, state, "one"))
    asyncio.run(service.vote(state, Outcome.A, VOTER))
    asyncio.run(ask_all(service, state, "two"))
    with pytest.raises(UserError, match="limit is 2 per minute"):
        asyncio.run(ask_all(service, state, "three"))
    with pytest.raises(UserError, match="voting too fast: the limit is 1 per hour"):
        asyncio.run(service.vote(state, Outcome.B, VOTER))
    assert len(reads(repo).votes()) == 1
