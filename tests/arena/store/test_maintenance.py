"""Closing interrupted battles, pruning old voter data, online backups: on SQLite and PostgreSQL alike."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arena.domain import Outcome, Reply, ReplyStatus, Side, VoteFilter, Voter
from arena.maintenance import battle_ids, close_interrupted, instance_prefix
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository
from tests.support.battles import store_round
from tests.support.helpers import ROOT
from tests.support.store_reads import reads

NOW = datetime.now(UTC).replace(microsecond=0)  # the CLI prunes relative to the real clock
MODELS = {Side.A: "m-a", Side.B: "m-b"}


class Clock:
    """A settable clock for the repository."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ok(text: str) -> Reply:
    return Reply(text=text, status=ReplyStatus.OK, ttft_ms=1.0, total_ms=2.0, tokens=1)


def battle(repo: Repository, battle_id: str, voter: Voter, *, rounds: int = 1) -> None:
    repo.create_battle(battle_id=battle_id, models=MODELS, voter=voter, language="French")
    for turn in range(rounds):
        store_round(repo, battle_id, (ok("a"), ok("b")), turn=turn, text=f"question {turn}", language="French")


def voted(repo: Repository, battle_id: str, voter: Voter, outcome: Outcome = Outcome.A) -> None:
    battle(repo, battle_id, voter)
    repo.record_vote(battle_id=battle_id, turn_index=0, outcome=outcome, anonymous=True, voter=voter, language="French")


def consistent(repo: Repository) -> bool:
    """The counts tables equal a recount of the votes, under every filter the leaderboard offers."""
    variants = [VoteFilter(), VoteFilter(include_named=True, include_leaks=True, include_self_play=True)]
    return all(sorted(repo.pair_outcomes(f)) == sorted(reads(repo).pair_outcomes_from_votes(f)) for f in variants)


def test_restart_closes_its_own_open_battles_and_idle_ones_but_not_a_live_instances(db_url: str) -> None:
    clock = Clock(NOW - timedelta(hours=3))
    repo = Repository(make_engine(db_url), clock=clock)
    mine, theirs = instance_prefix("host-1:/data"), instance_prefix("host-2:/data")
    old_idle, old_active = battle_ids(theirs)(), battle_ids(theirs)()
    battle(repo, old_idle, Voter("s0"), rounds=0)
    battle(repo, old_active, Voter("s1"), rounds=0)
    clock.now = NOW - timedelta(minutes=1)
    store_round(repo, old_active, (ok("a"), ok("b")), text="still here")
    interrupted, their_live, my_voted = battle_ids(mine)(), battle_ids(theirs)(), battle_ids(mine)()
    battle(repo, interrupted, Voter("s2"))
    battle(repo, their_live, Voter("s3"))
    voted(repo, my_voted, Voter("s4"))
    clock.now = NOW

    assert close_interrupted(repo, prefix=mine, idle_minutes=120, clock=clock) == 2
    status = {
        b: s.status for b in (old_idle, old_active, interrupted, their_live, my_voted) if (s := reads(repo).battle(b))
    }
    assert status == {
        old_idle: "incomplete",
        old_active: "open",
        interrupted: "incomplete",
        their_live: "open",
        my_voted: "voted",
    }
    assert len(interrupted) == 32 and interrupted.startswith(mine)
    # a battle closed by mistake (its process was alive after all) reopens with its next stored round
    store_round(repo, old_idle, (ok("a"), ok("b")), text="back")
    stored = reads(repo).battle(old_idle)
    assert stored is not None and stored.status == "open"


def seed(db_url: str) -> tuple[Repository, Clock]:
    """Two old voted battles (40 and 35 days ago), one recent one, an old and a recent chat with feedback."""
    clock = Clock(NOW - timedelta(days=40))
    repo = Repository(make_engine(db_url), clock=clock)
    voted(repo, "old1" + "0" * 28, Voter("s-old", "hash-old"), Outcome.A)
    clock.now = NOW - timedelta(days=35)
    voted(repo, "old2" + "0" * 28, Voter("s-old2", "hash-old2"), Outcome.TIE)
    for when, sid in ((NOW - timedelta(days=40), "s-chat-old"), (NOW - timedelta(days=1), "s-chat-new")):
        clock.now = when
        voter = Voter(sid, f"hash-{sid}")
        repo.create_chat(conversation_id=f"chat-{sid}", model="m-a", voter=voter)
        message = repo.record_chat_turn(
            conversation_id=f"chat-{sid}", turn_index=0, user_text="hi", reply=ok("hello"), model="m-a", params={}
        )
        repo.record_feedback(message_id=message, rating="down", tags=["wrong"], comment="my email is x@y", voter=voter)
    clock.now = NOW - timedelta(days=2)
    voted(repo, "new1" + "0" * 28, Voter("s-new", "hash-new"), Outcome.B)
    clock.now = NOW
    return repo, clock


def test_prune_anonymise_keeps_votes_and_counts_and_drops_who_voted(db_url: str) -> None:
    repo, _ = seed(db_url)
    before = sorted(repo.pair_outcomes())
    dry = repo.prune(cutoff=NOW - timedelta(days=30), action="anonymise", dry_run=True)
    assert dry.dry_run and (dry.battles, dry.votes, dry.conversations, dry.feedback, dry.comments) == (2, 2, 5, 1, 1)
    assert {v.session_id for v in reads(repo).votes()} == {"s-old", "s-old2", "s-new"}, "a dry run changed data"

    report = repo.prune(cutoff=NOW - timedelta(days=30), action="anonymise")
    assert (report.battles, report.votes, report.conversations, report.feedback) == (2, 2, 5, 1)
    votes = {v.battle_id[:4]: v for v in reads(repo).votes()}
    assert (votes["old1"].session_id, votes["old1"].ip_hash) == ("pruned", None)
    assert (votes["new1"].session_id, votes["new1"].ip_hash) == ("s-new", "hash-new")
    old_battle = reads(repo).battle("old1" + "0" * 28)
    assert old_battle is not None and old_battle.conversations[Side.A][0].content == "question 0"  # training data
    feedback = {f.session_id: f for f in reads(repo).feedback()}
    assert feedback["s-chat-new"].comment == "my email is x@y"
    [old_feedback] = [f for s, f in feedback.items() if s.startswith("pruned")]
    assert old_feedback.comment is None and old_feedback.rating == "down"
    assert sorted(repo.pair_outcomes()) == before and consistent(repo)
    again = repo.prune(cutoff=NOW - timedelta(days=30), action="anonymise")
    assert (again.battles, again.votes, again.conversations, again.feedback) == (0, 0, 0, 0)


def test_prune_delete_removes_old_battles_and_takes_their_votes_out_of_the_counts(db_url: str) -> None:
    repo, _ = seed(db_url)
    report = repo.prune(cutoff=NOW - timedelta(days=30), action="delete")
    assert (report.battles, report.votes, report.feedback) == (2, 2, 1)
    assert report.conversations == 5 and report.messages == 10  # 2 battles × 2 sides × 2 + the old chat's 2
    assert [v.session_id for v in reads(repo).votes()] == ["s-new"]
    assert reads(repo).battle("old1" + "0" * 28) is None and reads(repo).conversation("chat-s-chat-old") == []
    assert [f.session_id for f in reads(repo).feedback()] == ["s-chat-new"]
    assert repo.pair_outcomes() == [("m-a", "m-b", Outcome.B, 1)] and consistent(repo)
    since = (NOW - timedelta(days=50)).date()
    assert repo.pair_outcomes(VoteFilter(since=since)) == [("m-a", "m-b", Outcome.B, 1)], (
        "daily counts keep deleted votes"
    )


def run_arena(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arena", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_prune_command_reads_retention_from_the_config_and_says_what_it_did(sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url)
    config = tmp_path / "arena.yaml"
    config.write_text("arena:\n  retention: {days: 30, action: delete}\nmodels: []\n", encoding="utf-8")
    dry = run_arena("prune", "--db", sqlite_url, "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("delete before ") and "would change 2 battles, 2 votes" in dry.stdout
    done = run_arena("prune", "--db", sqlite_url, "--days", "30", "--action", "anonymise")
    assert done.returncode == 0 and "changed 2 battles, 2 votes" in done.stdout
    unset = run_arena("prune", "--db", sqlite_url)
    assert unset.returncode == 2 and "--days N" in unset.stderr and "Traceback" not in unset.stderr
    config.write_text("arena:\n  retention: {days: 0}\n", encoding="utf-8")
    bad = run_arena("prune", "--db", sqlite_url, "--config", str(config))
    assert bad.returncode == 2 and "arena.retention.days" in bad.stderr and "Traceback" not in bad.stderr


def test_backup_while_the_app_writes_then_restore_reads_every_vote(sqlite_url: str, tmp_path: Path) -> None:
    repo = Repository(make_engine(sqlite_url))
    for i in range(20):
        voted(repo, f"before{i:02d}".ljust(32, "0"), Voter(f"s{i}", "h"))
    before = {(v.battle_id, v.turn_index, v.outcome) for v in reads(repo).votes()}
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:  # another writer keeps voting for the whole backup
        i = 0
        while not stop.is_set():
            battle_id = f"during{i:05d}".ljust(32, "0")
            voted(repo, battle_id, Voter(f"w{i}", "h"), Outcome.TIE)
            written.append(battle_id)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:
            threading.Event().wait(0.01)
        out = tmp_path / "backups" / "corral-backup.db"
        result = run_arena("backup", "--db", sqlite_url, "--out", str(out))
        after_backup = len(written)
        while len(written) < after_backup + 3:  # writes went on after the backup too
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("backed up ") and "integrity ok" in result.stdout

    restored = tmp_path / "restored" / "corral.db"
    restored.parent.mkdir()
    shutil.copyfile(out, restored)  # the documented restore: copy the file in place, with the app stopped
    engine = make_engine(f"sqlite:///{restored}")
    upgrade(engine)
    back = Repository(engine)
    votes = {(v.battle_id, v.turn_index, v.outcome) for v in reads(back).votes()}
    source = {(v.battle_id, v.turn_index, v.outcome) for v in reads(repo).votes()}
    assert before <= votes <= source, "the backup lost a committed vote or holds one that never was"
    assert len(votes) > len(before) and len(votes) < len(source), "the backup was not taken during the writes"
    assert consistent(back)
    for battle_id, _, _ in votes:
        stored = reads(back).battle(battle_id)
        assert stored is not None and stored.status == "voted" and len(stored.conversations[Side.A]) == 2
    with sqlite3.connect(restored) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_backup_of_postgresql_prints_pg_dump_guidance_without_the_password(tmp_path: Path) -> None:
    result = run_arena("backup", "--db", "postgresql+psycopg://corral:s3cret-pw@db.internal/corral", "--out", "x.dump")
    assert result.returncode == 2 and result.stdout == ""
    assert 'pg_dump --format=custom --file "x.dump" "postgresql://corral@db.internal/corral"' in result.stderr
    assert "pg_restore" in result.stderr and "s3cret-pw" not in result.stderr
    missing = run_arena("backup", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--out", str(tmp_path / "b.db"))
    assert missing.returncode == 2 and "no database at" in missing.stderr and not (tmp_path / "b.db").exists()
