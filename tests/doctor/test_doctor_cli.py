"""`difftui doctor ID` through CliRunner: the table, --json, the exit code (1 when a warning stands, 0 otherwise, 2 for
a user error), and that judging a run imports no torch; the incremental Doctor for dashboard polls."""

import json
import subprocess
import sys

import numpy as np
import pytest
from doctor_testkit import config, decaying, record, with_cv
from typer.testing import CliRunner

from difftui.engine.doctor import Doctor
from difftui.engine.store import Store
from difftui.tui.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def runs(tmp_path):
    """(db, jittery run id, clean run id)."""
    db = tmp_path / "runs.db"
    cfg = config("recipe.batch_size=128", recipe="p1-hybrid-cosine")
    with Store(db) as store:
        jittery = record(store, cfg, series={"L_vlb": with_cv(200, 6.0, 40.0, 1280), "L_simple": decaying(200)})
        clean = record(store, cfg, series={"L_vlb": with_cv(200, 6.0, 2.0, 1280), "L_simple": decaying(200)})
    return db, jittery, clean


def test_doctor_prints_the_finding_with_its_section_evidence_and_set_edit_and_exits_1(runs):
    db, jittery, _ = runs
    result = invoke("doctor", jittery, "--db", db)
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run {jittery} recorded (completed, step 2,000): 1 warning(s), 0 info")
    row = next(line for line in lines if "3.3" in line and "warning" in line)
    assert "The VLB curve jitters under uniform timestep sampling" in row
    assert "--set recipe.importance_sampling=true" in result.stdout
    assert "--set recipe.hybrid_lambda=0.0005" in result.stdout
    assert "per-image coefficient of variation" in result.stdout
    assert "not judged  overfitting (playbook 1.4, 4.5, 2.9): needs" in result.stdout
    why = invoke("doctor", jittery, "--db", db, "--why")
    assert "importance sampling markedly lowers the objective's variance" in why.stdout


def test_doctor_exits_0_when_no_warning_stands(runs):
    db, _, clean = runs
    result = invoke("doctor", clean, "--db", db)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 warning(s)" in result.stdout.splitlines()[0]


def test_doctor_json_holds_findings_needs_and_clean_rules(runs):
    db, jittery, clean = runs
    result = invoke("doctor", jittery, "--db", db, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    (f,) = data["findings"]
    assert f["rule"] == "vlb-jitter" and f["section"] == "3.3" and f["severity"] == "warning"
    assert f["edits"][0] == {"recipe.importance_sampling": True}
    assert f["evidence"]["steps"] == [400, 2000]         # past the first 20% of the run and f["evidence"]["numbers"]["per_image_cv"] > 8
    assert {n["rule"] for n in data["needs"]} >= {"overfitting", "ddim-consistency"}
    assert "mixed-precision-skips" in data["not_applicable"]
    assert invoke("doctor", clean, "--db", db, "--json").exit_code == 0


def test_doctor_user_errors_are_one_line_with_exit_2(tmp_path, runs):
    db, _, _ = runs
    result = invoke("doctor", 99, "--db", db)
    assert result.exit_code == 2 and result.stderr.strip() == f"difftui: error: no run 99 in {db}"
    result = invoke("doctor", 1, "--db", tmp_path / "nope.db")
    assert result.exit_code == 2 and "no such run database" in result.stderr


def test_judging_a_run_imports_no_torch(runs):
    db, jittery, _ = runs
    code = ("import sys, json; from difftui.engine.store import Store; from difftui.engine.doctor import diagnose\n"
            f"d = diagnose(Store({str(db)!r}), {jittery})\n"
            "print(json.dumps([len(d.findings), 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [1, False]


def test_the_doctor_judges_again_only_when_the_run_moved(runs):
    db, jittery, _ = runs
    with Store(db) as store:
        doctor = Doctor(store, jittery)
        first = doctor.check()
        assert doctor.check() is first and doctor.judged == 1            # nothing new: the same judgement
        store.write_batch(jittery, metrics=[(2010, 0.0, "L_vlb", 6.0, 0.0)], run_fields={"step": 2010})
        second = doctor.check()
        assert doctor.judged == 2 and second.step == 2010
        assert doctor.new_findings(first) == () and [f.rule for f in doctor.new_findings(None)] == ["vlb-jitter"]
        store.write_batch(jittery, metrics=[(s, 0.0, "grad_norm", float(v), 0.0)
                                            for s, v in zip(range(2020, 2220, 10), np.ones(20), strict=True)])
        doctor.check()
        assert doctor.judged == 3


def test_a_run_that_moves_on_every_poll_is_judged_at_the_budgets_pace_and_a_status_change_at_once(runs):
    db, jittery, _ = runs
    now = [0.0]
    with Store(db) as store:
        doctor = Doctor(store, jittery, budget=0.01, clock=lambda: now[0])
        first = doctor.check()
        wait = first.seconds / 0.01                     # the next judgement no sooner than this
        for k in range(5):                              # a running run: new rows and a new step on every poll
            now[0] += wait / 10
            store.write_batch(jittery, metrics=[(2010 + 10 * k, 0.0, "L_vlb", 6.0, 0.0)],
                              run_fields={"step": 2010 + 10 * k})
            assert doctor.check() is first and doctor.stale
        assert doctor.judged == 1
        now[0] += wait
        assert doctor.check() is not first and doctor.judged == 2 and not doctor.stale
        store.write_batch(jittery, metrics=[(2100, 0.0, "L_vlb", 6.0, 0.0)], run_fields={"status": "stopped", "step": 2100})
        assert doctor.check().step == 2100 and doctor.judged == 3      # a change of status: judged at once


def test_a_rule_that_fails_is_a_needs_note_and_the_others_still_judge(runs):
    from difftui.engine.doctor import diagnose
    from difftui.engine.doctor.rule import Rule
    from difftui.engine.doctor.rules import RULES

    def broken(view):
        raise KeyError("oops")

    db, jittery, _ = runs
    with Store(db) as store:
        d = diagnose(store, jittery, rules=(Rule("broken", "0.0", "a broken rule", broken, lambda v: True), *RULES))
    assert d.needs[0].rule == "broken" and d.needs[0].missing == ("the rule failed: KeyError: 'oops'",)
    assert [f.rule for f in d.findings] == ["vlb-jitter"]
