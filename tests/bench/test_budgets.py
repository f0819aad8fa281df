"""The benchmark's verdicts: what quick mode leaves unjudged, and the agent's floor rule.

No measurement here: the budget logic of ``python -m benchmarks`` on numbers made up for it.
"""

from __future__ import annotations

from benchmarks import __main__ as bench
from benchmarks._report import QUICK, Section
from benchmarks.agent_cost import _budgets


def test_a_budget_not_judged_is_shown_with_its_reason_and_never_fails_the_run() -> None:
    s = Section("memory", "4. Memory")
    s.budget("memory: soak slope", "<= 0.5 MB/min", "+3.1 MB/min", False, not_judged=QUICK)
    s.budget("memory: growth", "< 50 MB", "+6 MB", True)
    s.budget("gpu", "…", "no GPU", None)
    table = bench.budget_table([s])
    assert [row[3] for row in table.rows] == ["not judged in quick mode", "met", "not measured"]
    assert not any(b.broken for b in s.budgets)
    s.budget("memory: closed widgets", "0", "3", False)
    assert [b.name for b in s.budgets if b.broken] == ["memory: closed widgets"]


def _agent(p99: dict[str, float]) -> tuple[bool, str]:
    s = Section("agent", "6")
    _budgets(s, p99, waited=False)
    row = s.budgets[0]
    assert row.met is not None
    return row.met, row.measured


def _p99(pub: float, floor: float) -> dict[str, float]:
    out = {}
    for case in ("blocked bursts", "blocked steady", "busy bursts", "busy steady"):
        out[case], out[f"{case}_floor"] = 5.0, 4.0
    out["busy bursts"], out["busy bursts_floor"] = pub, floor
    return out


def test_agent_p99_is_judged_against_the_machine_floor_in_every_pattern() -> None:
    # Under 20 µs: met whatever the floor.
    assert _agent(_p99(19.0, 3.0))[0] is True
    # Over 20 µs where the stdlib hand-off beside it needed 16 µs (the quick run of issue 17):
    # the machine's floor, not the call, is what is slow there; 23 µs is 1.44x it.
    met, measured = _agent(_p99(23.0, 16.0))
    assert met is True and "busy bursts" in measured and "1.44×" in measured
    # Over 20 µs and more than twice the floor: not met.
    met, measured = _agent(_p99(21.0, 5.0))
    assert met is False and "busy bursts" in measured
