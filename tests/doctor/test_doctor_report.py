"""The report's findings section (engine/eval/report.py): the doctor's judgement of the run, each finding with its
section, evidence and steps, the playbook's sentence and the --set edit; the rules that lacked their data."""

from doctor_testkit import config, decaying, record, with_cv

from difftui.engine.eval.report import write_report
from difftui.engine.store import Store


def test_the_report_lists_the_findings_with_section_evidence_and_edit(tmp_path):
    db = tmp_path / "runs.db"
    cfg = config("recipe.batch_size=128", recipe="p1-hybrid-cosine")
    with Store(db) as store:
        run_id = record(store, cfg, series={"L_vlb": with_cv(200, 6.0, 40.0, 1280), "L_simple": decaying(200)})
    text = write_report(db, run_id).read_text()
    section = text[text.index("## Findings"):text.index("## Configuration")]
    assert f"`difftui doctor {run_id}` at step 2,000: 1 warning(s), 0 info" in section
    row = next(line for line in section.splitlines() if line.startswith("| warning |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["warning", "3.3", "The VLB curve jitters under uniform timestep sampling"]
    assert cells[3].endswith("(400-2,000)") and "per-image coefficient of variation" in cells[3]
    assert "importance sampling markedly lowers" in cells[4]
    assert cells[5].startswith("`--set recipe.importance_sampling=true`<br>`--set recipe.hybrid_lambda=0.0005`")
    assert "- not judged: the fixed-x_T consistency across step counts (playbook 5.2)" in section


def test_a_run_without_findings_says_so(tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = record(store, config(), series={"L_simple": decaying(50)})
    text = write_report(db, run_id).read_text()
    assert "No finding." in text[text.index("## Findings"):text.index("## Configuration")]
