"""`python -m benchmarks.bench_sampling`: votes needed to rank models right, uniform pairs vs active sampling.

A simulated arena with known true ratings (12 models drawn from N(1000, 150), 10% ties). Each arm draws pairs
with `arena.sampling.choose_pair` — uniform: mode "weighted", equal weights; active: mode "active", fed the
per-pair vote counts and the Bradley–Terry ratings refitted from the counts so far every CHECK_EVERY votes — and
the outcome comes from the true ratings. At every checkpoint the fitted ratings are compared with the true ones by
Spearman rank correlation; an arm's score is the first checkpoint from which the correlation stays at or above
TARGET up to CAP votes (CAP when it never settles). Both arms use the same seeds: the same true ratings, the same
pair-drawing generator, and the same outcome stream per pair (the k-th battle of a pair has the same outcome in
both arms), so that the arms differ only in which pairs they ask about.

Saves benchmarks/results/bench_sampling.json; the last line printed is `uniform_votes=U active_votes=A`.
"""

from __future__ import annotations

import itertools
import json
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from arena.ratings import fit_bradley_terry, win_probability
from arena.sampling import SamplingSettings, choose_pair

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_sampling.json"
N_MODELS = 12
RATING_MEAN = 1000.0
RATING_SD = 150.0
TIE_RATE = 0.10
TARGET = 0.95
CHECK_EVERY = 25
CAP = 4000
SEEDS = tuple(range(60))
WORKERS = 2
ARMS: dict[str, SamplingSettings] = {
    "uniform": SamplingSettings(mode="weighted"),
    "active": SamplingSettings(mode="active"),
}


def spearman(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Spearman rank correlation (tied values share their average rank); 0 when either side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((rx @ rx) * (ry @ ry)))
    return float(rx @ ry) / denominator if denominator > 0 else 0.0


def _ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    # Ties get the mean of the ranks they span, as in the textbook definition.
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def run_arm(true: dict[str, float], settings: SamplingSettings, seed: int) -> dict[str, Any]:
    """Simulate one arm for CAP votes; return the votes it needed to settle and its last correlation."""
    rng = random.Random(seed)
    names = sorted(true)
    pairs = list(itertools.combinations(names, 2))
    # Two uniforms per (pair, k-th battle of that pair): is it a tie, and who wins otherwise.
    streams = np.random.default_rng([seed, 1]).random((len(pairs), CAP, 2))
    pair_index = {pair: i for i, pair in enumerate(pairs)}
    weights = dict.fromkeys(names, 1.0)
    truth = np.array([true[n] for n in names])
    counts = dict.fromkeys(pairs, (0, 0, 0))
    pair_battles: dict[frozenset[str], int] = {}
    ratings: dict[str, float] | None = None
    active = settings.mode == "active"
    curve: list[float] = []
    for n in range(1, CAP + 1):
        a, b = choose_pair(
            weights, rng, settings=settings, pair_battles=pair_battles if active else None, ratings=ratings
        )
        first, second = sorted((a, b))
        key = frozenset((a, b))
        seen = pair_battles.get(key, 0)
        tie_draw, win_draw = streams[pair_index[(first, second)], seen]
        wins_first, wins_second, ties = counts[(first, second)]
        if tie_draw < TIE_RATE:
            ties += 1
        elif win_draw < win_probability(true[first], true[second]):
            wins_first += 1
        else:
            wins_second += 1
        counts[(first, second)] = (wins_first, wins_second, ties)
        pair_battles[key] = seen + 1
        if n % CHECK_EVERY == 0:
            fitted = fit_bradley_terry(counts, models=names)
            ratings = fitted if active else None
            curve.append(spearman(np.array([fitted[m] for m in names]), truth))
    failing = [i for i, rho in enumerate(curve) if rho < TARGET]
    settled_at = (failing[-1] + 2) * CHECK_EVERY if failing else CHECK_EVERY
    return {"votes": min(settled_at, CAP), "settled": settled_at <= CAP, "final_spearman": round(curve[-1], 4)}


def run_seed(seed: int) -> dict[str, Any]:
    """Both arms on one seed's true ratings."""
    draws = np.random.default_rng(seed).normal(RATING_MEAN, RATING_SD, N_MODELS)
    true = {f"model-{i:02d}": float(r) for i, r in enumerate(draws)}
    row: dict[str, Any] = {"seed": seed, "true_ratings": {m: round(r, 1) for m, r in true.items()}}
    for arm, settings in ARMS.items():
        row[arm] = run_arm(true, settings, seed)
    return row


def main() -> int:
    """Run both arms over all seeds, print a summary, save JSON, end with the headline line."""
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        per_seed = list(pool.map(run_seed, SEEDS))
    for row in per_seed:
        print(f"seed {row['seed']:2d}: " + "  ".join(f"{arm} {row[arm]['votes']:5d}" for arm in ARMS))
    summary = {
        arm: {
            "mean_votes": statistics.fmean(r[arm]["votes"] for r in per_seed),
            "median_votes": statistics.median(r[arm]["votes"] for r in per_seed),
            "settled_runs": sum(r[arm]["settled"] for r in per_seed),
            "mean_final_spearman": statistics.fmean(r[arm]["final_spearman"] for r in per_seed),
        }
        for arm in ARMS
    }
    savings = [r["uniform"]["votes"] - r["active"]["votes"] for r in per_seed]
    paired = {
        "mean_saving": statistics.fmean(savings),
        "saving_standard_error": statistics.stdev(savings) / len(savings) ** 0.5,
        "active_fewer": sum(s > 0 for s in savings),
        "active_more": sum(s < 0 for s in savings),
    }
    elapsed = time.perf_counter() - started
    report = {
        "settings": {
            "n_models": N_MODELS,
            "rating_mean": RATING_MEAN,
            "rating_sd": RATING_SD,
            "tie_rate": TIE_RATE,
            "target_spearman": TARGET,
            "check_and_refit_every": CHECK_EVERY,
            "cap_votes": CAP,
            "seeds": list(SEEDS),
            "arms": {arm: asdict(s) for arm, s in ARMS.items()},
        },
        "per_seed": per_seed,
        "summary": summary,
        "paired": paired,
        "elapsed_s": round(elapsed, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"votes until Spearman >= {TARGET} for good (cap {CAP}), {len(SEEDS)} seeds, {N_MODELS} models:")
    for arm, s in summary.items():
        print(
            f"  {arm:8s} mean {s['mean_votes']:7.1f}  median {s['median_votes']:7.1f}  "
            f"settled {s['settled_runs']}/{len(SEEDS)}  final rho {s['mean_final_spearman']:.3f}"
        )
    print(
        f"  paired: active saves {paired['mean_saving']:.0f} ± {paired['saving_standard_error']:.0f} votes; "
        f"fewer on {paired['active_fewer']}, more on {paired['active_more']} seeds"
    )
    print(f"  {elapsed:.0f} s; saved {RESULTS.relative_to(ROOT)}")
    uniform, active = (round(summary[arm]["mean_votes"]) for arm in ("uniform", "active"))
    print(f"uniform_votes={uniform} active_votes={active}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
