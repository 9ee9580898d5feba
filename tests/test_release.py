"""Core release mechanics: gate decision, atomic append-only publish, refusal records, audit."""

import json

import pytest

from synth_pipeline.errors import BadInput
from synth_pipeline.kernel import (
    GATES, GateRecord, ReleaseExists, audit, gate_problems, publish, record_refusal, release_id_for,
)

SHA, SETTINGS = "a" * 64, "b" * 64


def _records(**over):
    recs = {g: GateRecord(g, True, SHA, SETTINGS, "run1") for g in GATES}
    recs.update(over)
    return recs


def test_all_gates_passed_for_this_candidate_allows_release():
    assert gate_problems(_records(), candidate_sha256=SHA, thresholds_sha256=SETTINGS) == []


@pytest.mark.parametrize(
    "record, expected",
    [
        (None, "did not run"),
        (GateRecord("dcr_gate", True, "c" * 64, SETTINGS, "old"), "another candidate"),
        (GateRecord("dcr_gate", True, SHA, "d" * 64, "old"), "other thresholds"),
        (GateRecord("dcr_gate", False, SHA, SETTINGS, "run1", "share 0.71 > 0.60"), "share 0.71"),
    ],
)
def test_missing_stale_or_failed_gate_blocks_release(record, expected):
    problems = gate_problems(_records(dcr_gate=record), candidate_sha256=SHA, thresholds_sha256=SETTINGS)
    assert len(problems) == 1 and problems[0].startswith("dcr_gate") and expected in problems[0]


def _publish(root, rid="20261125-x-abc"):
    return publish(root, "flchain", rid, {"synthetic.parquet": b"PAR1data", "report.html": b"<html>"},
                   {"verdict": "published", "dataset": "flchain"})


def test_publish_is_complete_read_only_and_append_only(tmp_path):
    path = _publish(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "manifest.sig", "report.html", "synthetic.parquet"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"synthetic.parquet", "report.html"}
    assert oct((path / "synthetic.parquet").stat().st_mode)[-3:] == "444"
    with pytest.raises(ReleaseExists):
        _publish(tmp_path)
    assert [p.name for p in (tmp_path / "flchain").iterdir()] == [path.name]  # no temp folder left behind
    assert audit(path).ok


def test_publish_failure_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        publish(tmp_path, "flchain", "r1", {"synthetic.parquet": object()}, {"verdict": "published"})  # type: ignore[dict-item]
    assert list((tmp_path / "flchain").iterdir()) == []


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 100])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(BadInput):
        publish(tmp_path, name, "r1", {}, {})


def test_audit_detects_tampering_missing_and_extra_files(tmp_path):
    path = _publish(tmp_path)
    for p in path.iterdir():
        p.chmod(0o644)
    (path / "report.html").write_bytes(b"<html>changed")
    (path / "extra.csv").write_text("a,b\n")
    (path / "synthetic.parquet").unlink()
    problems = "\n".join(audit(path).problems)
    assert "report.html: sha256 differs" in problems
    assert "synthetic.parquet: missing" in problems
    assert "extra.csv: not listed" in problems


def test_refusal_records_merge_entries_per_gate(tmp_path):
    record_refusal(tmp_path, "flchain", "run9", {"gate": "dcr_gate", "passed": False, "reason": "copies"})
    path = record_refusal(tmp_path, "flchain", "run9", {"gate": "linkability_gate", "passed": False, "reason": "risk"})
    doc = json.loads(path.read_text())
    assert path == tmp_path / "flchain" / "refusals" / "run9.json"
    page = path.with_suffix(".html").read_text()
    assert "dcr_gate" in page and "linkability_gate" in page and "risk" in page
    assert not list(path.parent.glob("*.tmp"))
    assert doc["failing_gates"] == ["dcr_gate", "linkability_gate"] and doc["published"] is False


def test_release_id_is_deterministic():
    assert release_id_for("20261125", "gaussian_copula", SHA) == release_id_for("20261125", "gaussian_copula", SHA)
