"""The Leaderboard tab: ratings with 95% intervals, win-rate and battle-count heatmaps, per language and category;
the style-controlled ranking and the audit on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from arena.audit import BARS, QUIET, counted
from arena.categories import BY_NAME, CATEGORIES
from arena.domain import HUMAN, JUDGE_PREFIX, VoteFilter
from arena.leaderboard import INTERVALS, Leaderboard, LeaderboardService

ALL = "All languages"
PEOPLE = "People"
EVERYONE = "Everyone (people and AI judges)"


def voter_label(kind: str) -> str:
    """A voter kind as the Voters dropdown shows it."""
    if kind == HUMAN:
        return PEOPLE
    if kind == "all":
        return EVERYONE
    return "AI judge " + kind.removeprefix(JUDGE_PREFIX)


def voter_kind(label: object) -> str:
    """The voter filter a Voters choice means (anything unknown: people)."""
    if label == EVERYONE:
        return "all"
    if isinstance(label, str) and label.startswith("AI judge ") and len(label) > len("AI judge "):
        return JUDGE_PREFIX + label.removeprefix("AI judge ")
    return HUMAN


ALL_QUESTIONS = "All questions"
CATEGORY_NAMES: dict[str, str] = {c.label: c.name for c in CATEGORIES}
"""A category's label in the dropdown → its name."""
INTERVAL_LABELS = {"bootstrap": "Bootstrap", "sandwich": "Sandwich (analytic)"}
CATEGORY_HELP = "Taken from each question by offline rules; a question may be in several."
COLUMNS = ["Rank", "Model", "Rating", "95% interval", "Votes", "Win rate"]
EXPLAIN = (
    "{method} Ratings come from anonymous votes: a tie or *both bad* counts half a win to each side, a slight "
    "preference three quarters. **Rank** = 1 + the number of models that are better beyond doubt (whose lower "
    "bound is above this model's upper bound), so models whose intervals overlap share a rank. Named votes, "
    "self-play and battles where an answer named a model are left out."
)


def rating_chart(board: Leaderboard) -> go.Figure:
    """Each rated model's rating with its 95% interval as whiskers."""
    rated = [s for s in board.standings if s.rating is not None]
    fig = go.Figure(
        go.Scatter(
            x=[s.model for s in rated],
            y=[s.rating for s in rated],
            mode="markers",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(s.upper or 0) - (s.rating or 0) for s in rated],
                "arrayminus": [(s.rating or 0) - (s.lower or 0) for s in rated],
            },
        )
    )
    fig.update_layout(title="Rating with 95% interval", yaxis_title="rating", height=380, margin={"t": 50})
    return fig


# A win rate is read against 50% (a diverging scale, white at even); a count against zero (a sequential scale
# whose lightest colour is 0). Named here once, so neither chart has to guess its kind from its text template.
WIN_RATE_COLOURS: dict[str, Any] = {"colorscale": "RdBu", "zmin": 0.0, "zmid": 0.5, "zmax": 1.0}
COUNT_COLOURS: dict[str, Any] = {"colorscale": "Blues", "zmin": 0}


def heatmap(board: Leaderboard, values: list[list[Any]], title: str, fmt: str, colours: dict[str, Any]) -> go.Figure:
    """A model × model heatmap (row = the model, column = its opponent), coloured by `colours`."""
    fig = go.Figure(go.Heatmap(z=values, x=board.models, y=board.models, texttemplate=fmt, **colours))
    fig.update_layout(title=title, height=420, margin={"t": 50}, yaxis={"autorange": "reversed"})
    return fig


def win_rate_chart(board: Leaderboard) -> go.Figure:
    """How often the row model beat the column model, on a diverging scale centred on 50%."""
    return heatmap(board, board.win_rates, "Win rate (row beats column)", "%{z:.0%}", WIN_RATE_COLOURS)


def battles_chart(board: Leaderboard) -> go.Figure:
    """How many battles each pair fought, on a sequential scale from 0 (lightest)."""
    return heatmap(board, board.battles, "Battles per pair", "%{z}", COUNT_COLOURS)


def table(board: Leaderboard) -> list[list[Any]]:
    """The standings as rows for a gr.Dataframe."""
    rows = []
    for s in board.standings:
        if s.rating is None:
            rows.append(["", s.model, "", "no votes yet", 0, ""])
            continue
        interval = f"{s.lower:.0f} – {s.upper:.0f}"
        rate = "" if s.win_rate is None else f"{100 * s.win_rate:.1f}%"
        rows.append([s.rank, s.model, round(s.rating), interval, s.votes, rate])
    return rows


@dataclass(frozen=True)
class LeaderboardView:
    """One render of the tab: the status line, the table, the board the charts draw, the language choices."""

    note: str
    rows: list[list[Any]]
    board: Leaderboard
    languages: list[str]
    language: str


class LeaderboardPresenter:
    """Computes the boards for the chosen language, category and intervals; plain values, tested without a
    browser. Anything but a known language or category name means all of them."""

    def __init__(self, service: LeaderboardService, *, rounds: int) -> None:
        self._service = service
        self._rounds = rounds

    def explain(self) -> str:
        """The text above the table, naming the rating method."""
        intervals = INTERVALS[self._service.intervals].format(rounds=self._rounds)
        return EXPLAIN.format(method=f"{self._service.method.summary} {intervals}")

    @property
    def interval_choices(self) -> list[tuple[str, str]]:
        """The interval kinds the method offers, as (label, value) pairs, the configured one first."""
        return [(INTERVAL_LABELS[kind], kind) for kind in self._service.interval_kinds]

    def voter_choices(self) -> list[str]:
        """The Voters dropdown: people, each AI judge with votes, everyone."""
        judges = [voter_label(kind) for kind in self._service.voter_kinds() if kind != HUMAN]
        return [PEOPLE, *judges, EVERYONE] if judges else [PEOPLE]

    def _filters(
        self, language: object, category: object, voters: object = None, known: list[str] | None = None
    ) -> tuple[VoteFilter, str | None, str | None]:
        """The vote filter of a language, a category and a voters choice, and the language and category it kept
        (`known`: the languages with votes, when the caller has read them already)."""
        known = self._service.languages() if known is None else known
        chosen = language if isinstance(language, str) and language in known else None
        kind = CATEGORY_NAMES.get(category) if isinstance(category, str) else None
        who = voter_kind(voters)
        return VoteFilter(languages=(chosen,) if chosen else None, category=kind, voters=who), chosen, kind

    def view(
        self, language: object, category: object = ALL_QUESTIONS, intervals: object = None, voters: object = None
    ) -> LeaderboardView:
        """The leaderboard of the chosen language, category and voters, with the chosen kind of interval."""
        known = self._service.languages()  # one read for the filter and the dropdown
        filters, chosen, kind = self._filters(language, category, voters, known)
        taken = intervals if intervals in self._service.interval_kinds else None
        board = self._service.compute(filters, rounds=self._rounds, intervals=taken)
        when = board.computed_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        took = board.db_seconds + board.fit_seconds
        votes = f"**{board.votes:,}** vote{'' if board.votes == 1 else 's'}"
        on = f" on {BY_NAME[kind].questions}" if kind else ""
        note = f"Computed {when} from {votes}{on} in {took:.2f} s ({board.intervals_taken})."
        if filters.voters == "all":
            note = f"**{EVERYONE}**: people's and AI judges' votes together. {note}"
        elif filters.voters != HUMAN:
            note = f"**{voter_label(filters.voters)}**: AI votes, not people's. {note}"
        return LeaderboardView(note, table(board), board, [ALL, *known], chosen or ALL)

    def style(
        self, language: object, category: object = ALL_QUESTIONS, voters: object = None
    ) -> tuple[list[list[Any]], str]:
        """The chosen votes' style-controlled standings as table rows, and what each style feature is worth."""
        filters, _, _ = self._filters(language, category, voters)
        board = self._service.style_board(filters)
        rows = [[s.rank, s.model, round(s.rating), f"{s.lower:.0f} – {s.upper:.0f}", s.votes] for s in board.standings]
        if not board.standings:
            return rows, "No vote with both answers' style yet."
        effects = "\n".join(f"- {e.sentence}" for e in board.effects)
        return rows, f"From {counted(board.votes, 'vote')}, with answer length and markdown held equal:\n\n{effects}"

    def judges(self, language: object, category: object = ALL_QUESTIONS) -> str:
        """How far each AI judge agrees with people on the chosen rounds, as Markdown."""
        filters, _, _ = self._filters(language, category)
        reports = self._service.agreement(filters)
        if not reports:
            return "No AI judge has judged a round yet (see `python -m arena autobattle` and `judges:` in the config)."
        parts = []
        for report in reports:
            lines = [f"**{report.judge}**", *(f"- {s}" for s in report.sentences)]
            lines += [f"- {b.sentence}" for b in (*report.by_pair, *report.by_language)]
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def audit(self, language: object, category: object = ALL_QUESTIONS, voters: object = None) -> str:
        """The audit of the chosen votes, as Markdown."""
        filters, _, _ = self._filters(language, category, voters)
        report = self._service.audit(filters, rounds=self._rounds)
        return audit_markdown(report.votes, report.voters, [f.sentence for f in report.findings])


STYLE_COLUMNS = ["Rank", "Model", "Rating", "95% interval", "Votes"]
STYLE_HELP = (
    "Voters tend to prefer longer answers and ones with more formatting. This ranking holds answer length and "
    "markdown (headers, list items, bold) equal between the two sides, as Chatbot Arena's default board does; "
    "the lines under it say what each was worth in these votes. Intervals: sandwich, 95%. It reads every vote, "
    "so it is computed when asked."
)
VOTERS_HELP = "People's votes by default; an AI judge's board is its own, never mixed in unless asked."
JUDGES_HELP = (
    "On the rounds both a person and an AI judge voted on: how often they agree, Cohen's kappa (0 is chance, 1 "
    "is full agreement), how often swapping the answers changes the judge's verdict, and whether it favours "
    "its own family. Computed when asked."
)
AUDIT_HELP = (
    "Whether the votes support the ranking above: side bias, ties, heavy voters, cycles, stability, separation. "
    "A line appears only when the evidence clears its bar."
)


def audit_markdown(votes: int, voters: int, sentences: list[str]) -> str:
    """The audit as Markdown: what was read, then one bullet per finding, or a sentence saying none fired."""
    head = f"Audit of {counted(votes, 'vote')} from {counted(voters, 'voter')}."
    body = "\n".join(f"- {s}" for s in sentences) or QUIET
    bars = "\n".join(f"- *{check}*: {bar}" for check, bar in BARS.items())
    return f"{head}\n\n{body}\n\n<details><summary>When each check speaks</summary>\n\n{bars}\n\n</details>"


def build_leaderboard_tab(service: LeaderboardService, concurrency_limit: int, tab: gr.Tab, *, rounds: int) -> None:
    """Lay out the Leaderboard tab and wire its refreshes (inside an open gr.Blocks)."""
    presenter = LeaderboardPresenter(service, rounds=rounds)
    gr.Markdown(presenter.explain())
    with gr.Row():
        language = gr.Dropdown([ALL], value=ALL, label="Language", elem_id="leaderboard-language", scale=3)
        category = gr.Dropdown(
            [ALL_QUESTIONS, *CATEGORY_NAMES],
            value=ALL_QUESTIONS,
            label="Category",
            info=CATEGORY_HELP,
            elem_id="leaderboard-category",
            scale=3,
        )
        choices = presenter.interval_choices
        intervals = gr.Radio(
            choices, value=choices[0][1], label="95% intervals", elem_id="leaderboard-intervals", scale=2
        )
        voters = gr.Dropdown(
            [PEOPLE], value=PEOPLE, label="Voters", elem_id="leaderboard-voters", scale=2, info=VOTERS_HELP
        )
        refresh = gr.Button("Refresh", elem_id="leaderboard-refresh", scale=1)
    status = gr.Markdown(elem_id="leaderboard-status")
    frame = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="leaderboard-table")
    ratings = gr.Plot(elem_id="leaderboard-ratings")
    with gr.Row():
        rates = gr.Plot(elem_id="leaderboard-win-rates")
        counts = gr.Plot(elem_id="leaderboard-battles")

    def compute(choice: Any, kind: Any, taken: Any, who: Any = PEOPLE) -> tuple[Any, ...]:
        view = presenter.view(choice, kind, taken, who)
        charts = rating_chart(view.board), win_rate_chart(view.board), battles_chart(view.board)
        return (view.note, view.rows, *charts, gr.update(choices=view.languages, value=view.language))

    with gr.Accordion("Style-controlled ranking", open=False, elem_id="leaderboard-style-panel"):
        gr.Markdown(STYLE_HELP)
        run_style = gr.Button("Compute", elem_id="leaderboard-style-run")
        style_frame = gr.Dataframe(headers=STYLE_COLUMNS, interactive=False, elem_id="leaderboard-style-table")
        style_effects = gr.Markdown(elem_id="leaderboard-style-effects")
    with gr.Accordion("Audit of the votes", open=False, elem_id="leaderboard-audit-panel"):
        gr.Markdown(AUDIT_HELP)
        run_audit = gr.Button("Audit", elem_id="leaderboard-audit-run")
        audit_report = gr.Markdown(elem_id="leaderboard-audit")
    with gr.Accordion("AI judges and people", open=False, elem_id="leaderboard-judges-panel"):
        gr.Markdown(JUDGES_HELP)
        run_judges = gr.Button("Compare", elem_id="leaderboard-judges-run")
        judges_report = gr.Markdown(elem_id="leaderboard-judges")

    def voter_choices() -> Any:
        return gr.update(choices=presenter.voter_choices())

    outputs = [status, frame, ratings, rates, counts, language]
    common: dict[str, Any] = {"concurrency_limit": concurrency_limit, "concurrency_id": "leaderboard"}
    chosen = [language, category, intervals, voters]
    refresh.click(compute, chosen, outputs, api_name="leaderboard_by", **common)
    # the API before categories: `/leaderboard` takes the language alone (all questions, the configured intervals)
    by_language = gr.Button(visible=False, elem_id="leaderboard-by-language")
    by_language.click(
        lambda choice: compute(choice, ALL_QUESTIONS, None), [language], outputs, api_name="leaderboard", **common
    )
    for control in (language, category, intervals, voters):
        control.input(compute, chosen, outputs, api_visibility="private", **common)
    tab.select(compute, chosen, outputs, api_visibility="private", **common)
    tab.select(voter_choices, None, [voters], api_visibility="private", **common)
    run_judges.click(presenter.judges, [language, category], [judges_report], api_visibility="private", **common)
    run_audit.click(presenter.audit, [language, category, voters], [audit_report], api_visibility="private", **common)
    # on demand, like the audit: it reads every vote (seconds at a million), the board above reads the counts
    run_style.click(
        presenter.style, [language, category, voters], [style_frame, style_effects], api_visibility="private", **common
    )
