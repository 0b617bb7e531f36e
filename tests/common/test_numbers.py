"""The one number formatter (issue 15 item 1, engine/numbers.py) at its edges, and the front ends that ask it: a
value reads the same on the dashboard, in the CLI, in the sweep table and compare, and an evaluation number the
same in `difftui show`, the dashboard's evaluation table and the report."""

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from difftui.engine.numbers import format_duration, format_fixed, format_number, format_setting


@pytest.mark.parametrize("value, text", [
    (None, "-"), (float("nan"), "NaN"), (float("inf"), "inf"), (-float("inf"), "-inf"),
    (0, "0"), (0.0, "0"), (-0.0, "0"),
    (12345, "12,345"), (12345.0, "12,345"), (12345.678, "12,346"),      # the 12345, int or float
    (1.23456e7, "1.235e+07"), (-1.23456e7, "-1.235e+07"), (9_999_999.0, "9,999,999"), (10_000_000.0, "1e+07"),
    (1e-5, "1e-05"), (-1e-5, "-1e-05"), (0.0001, "0.0001"), (0.000123456, "0.0001235"),
    (0.123456, "0.1235"), (-0.5, "-0.5"), (3.14159, "3.142"), (1.0, "1"), (100.0, "100"),
    (999.96, "1,000"), (1006.2, "1,006"), (-12345.6, "-12,346"),
    (7, "7"), (-42, "-42"), (10**9, "1,000,000,000"), (np.int64(123456789), "123,456,789"),   # counts: exact
    (np.float32(0.25), "0.25"), (np.float64(12345.0), "12,345"),
    (True, "True"), ("recipe", "recipe"),
])
def test_format_number_at_its_edges(value, text):
    assert format_number(value) == text


def test_fewer_digits_when_asked():
    assert [format_number(v, 3) for v in (0.000123, 1006.2, 0.123456, 1.23456e7, 7.0710678e-05)] == \
        ["0.000123", "1,006", "0.123", "1.23e+07", "7.07e-05"]


@pytest.mark.parametrize("value, decimals, text", [
    (21.75, 3, "21.750"), (3.87549, 4, "3.8755"), (12345.6789, 3, "12,345.679"), (0.31, 3, "0.310"),
    (-0.0001, 3, "0.000"), (-1.5, 1, "-1.5"), (None, 3, "-"), (float("nan"), 3, "NaN"), (-float("inf"), 4, "-inf"),
])
def test_format_fixed_lines_up_on_the_point(value, decimals, text):
    assert format_fixed(value, decimals) == text


@pytest.mark.parametrize("value, text", [
    (0.1, "0.1"), (1e-4, "0.0001"), (3e-5, "3e-05"), (100000, "100000"), (128, "128"), (0.9999, "0.9999"),
    ("cosine", "cosine"), (True, "True"), (None, "-"), (float("inf"), "inf"), ([1, 2, 2], "[1, 2, 2]"),
])
def test_a_setting_reads_as_it_is_typed_back(value, text):
    assert format_setting(value) == text


@pytest.mark.parametrize("seconds, text", [
    (0, "0:00:00"), (59.6, "0:01:00"), (3725, "1:02:05"), (47 * 3600 + 59 * 60, "47:59:00"),
    (3 * 86400 + 7200, "3d 2h"), (None, "-"), (float("nan"), "-"), (float("inf"), "-"), (-1, "-"),
])
def test_a_duration_is_h_mm_ss_then_days(seconds, text):
    assert format_duration(seconds) == text


#----------------------------------------------------------------------------
# The front ends.

def _run_with_losses(db, last: float, best: float):
    from difftui.engine.config.catalog import Catalog, config_to_dict
    from difftui.engine.store import Store
    with Store(db) as store:
        run_id = store.create_run(config_to_dict(Catalog().resolve(max_steps=10)), name="big", total_steps=10)
        store.write_batch(run_id, metrics=[(5, 0.04, "L_simple", best, 1.0), (10, 0.08, "L_simple", last, 2.0)])
        store.update_run(run_id, step=10, status="completed")
    return run_id


def test_a_value_reads_the_same_in_the_cli_the_run_list_the_sweep_table_and_compare(tmp_path):
    from difftui.engine.store import Store
    from difftui.engine.sweeps.compare import summarise_runs
    from difftui.tui.cli import app
    from difftui.tui.cli.sweep import member_rows
    from difftui.tui.widgets.member_table import member_columns
    from difftui.tui.widgets.run_table import _row
    db = tmp_path / "runs.db"
    ids = [_run_with_losses(db, last, best) for best, last in ((0.5, 12345.0), (12345.0, math.inf), (1e-5, 1.23456e7))]
    lasts, bests = ["12,345", "inf", "1.235e+07"], ["0.5", "12,345", "1e-05"]
    runner = CliRunner()
    listed = runner.invoke(app, ["--db", str(db), "ls"])                                     # `ls`
    assert listed.exit_code == 0 and [line.split()[-1] for line in listed.stdout.splitlines()[1:]] == lasts[::-1]
    for run_id, text in zip(ids, lasts, strict=True):                                        # `show`
        shown = runner.invoke(app, ["--db", str(db), "show", str(run_id)])
        assert shown.exit_code == 0 and f"L_simple {text}" in shown.stdout
    with Store(db) as store:
        runs = [store.get_run(run_id) for run_id in ids]
        rows = {r["id"]: r for r in store.list_runs()}
        summaries = summarise_runs(store, runs)
    assert [str(_row(rows[run_id])[4]) for run_id in ids] == lasts                           # the run list
    header, cells = member_rows(summaries)                                                   # `sweep show`
    last, best = header.index("L_simple last"), header.index("best")
    assert [c[last] for c in cells] == lasts and [c[best] for c in cells] == bests
    columns = {c.key: c for c in member_columns(summaries)}                                   # the sweep screen
    assert [str(columns["last:L_simple"].cell(s)) for s in summaries] == lasts
    assert [str(columns["best:L_simple"].cell(s)) for s in summaries] == bests
    compared = runner.invoke(app, ["--db", str(db), "compare", *map(str, ids)])              # `compare`
    assert compared.exit_code == 0
    assert any(line.split()[:5] == ["L_simple", "last", *lasts] for line in compared.stdout.splitlines())


def test_an_evaluation_number_reads_the_same_in_show_the_dashboard_and_the_report(tmp_path):
    from difftui.engine.config.catalog import Catalog, config_to_dict
    from difftui.engine.eval.report import write_report
    from difftui.engine.eval.rows import best_values, group_evaluations, table_records
    from difftui.engine.store import Store
    from difftui.tui.cli.eval import evaluation_lines
    from difftui.tui.widgets.eval_table import record_cells
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = store.create_run(config_to_dict(Catalog().resolve(max_steps=10)), name="eval", total_steps=10)
        common = dict(step=10, sampler="DDIM eta=0 N=10 linear", nfe=10, kind="fid", job_id=1, repeats=3,
                      samples=50_000, protocol={"samples": 50_000, "repeats": 3})
        store.add_eval_results(run_id, [{**common, "metric": "fid", "value": 12.34567, "spread": 0.4},
                                        {**common, "metric": "precision", "value": math.nan},
                                        {**common, "metric": "recall", "value": 0.61}])
        store.add_eval_results(run_id, [dict(step=10, sampler="full chain", nfe=1000, kind="nll", job_id=1,
                                             metric="nll_bpd", value=3.87549, samples=256)])
        rows = store.eval_results(run_id)
    fid_line, nll_line = evaluation_lines(rows, None)
    assert fid_line.startswith("  FID       12.346 (min of 3, spread 0.400, 50,000 samples")
    assert fid_line.endswith("precision NaN  recall 0.610") and nll_line.startswith("  NLL       3.8755 bits/dim")
    records = table_records(group_evaluations(rows))
    cells = [str(c) for c in record_cells(records[0], best_values(records), None)]
    assert cells[5:9] == ["12.346 ±0.400", "NaN", "0.610", "3.8755 /256"]
    report = write_report(db, run_id).read_text()
    assert "| DDIM eta=0 N=10 linear | 10 | 50,000 | 3 | 12.346 | 0.400 | NaN | 0.610 | - | - | - |" in report
    assert "| full chain | 1000 | - | - | - | - | - | - | 3.8755 | 256 | - |" in report
