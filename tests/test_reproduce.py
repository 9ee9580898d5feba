"""`synth-pipeline reproduce` on an MRI release (tiny budget): byte-identical from a moved input
folder, a flipped byte on disk is a difference, a wrong input is one line and exit 2, nothing is left
in temp folders and the production Dagster instance gets no new run; `mri-release` into a folder
where the id exists with other bytes is not "published"."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from synth_pipeline.cli import main
from synth_pipeline.imaging.cohort import write_pseudo_cohort
from synth_pipeline.release_contents import existing_release_problems


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One tiny-budget MRI release made with a production $DAGSTER_HOME, and its input folder moved
    away afterwards (the release lists the old path)."""
    base = tmp_path_factory.mktemp("mri-repro")
    folder = base / "cohort"
    write_pseudo_cohort(folder, n_subjects=5, seed=3)
    config = base / "mri.json"
    config.write_text(json.dumps({"thresholds": {"fid_ratio_max": None}}))
    home = base / "dagster_home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        assert main(["mri-release", "--data", str(folder), "--model", "r3gan_positional", "--budget", "tiny",
                     "--out", str(base / "releases"), "--config", str(config)]) == 0
    (release,) = [p for p in (base / "releases").glob("mri-*/*") if p.name != "refusals"]
    moved = base / "moved" / "cohort"
    moved.parent.mkdir()
    shutil.move(folder, moved)
    return {"release": release, "moved": moved, "home": home, "config": config, "base": base}


def _production(home: Path) -> tuple[int, str | None]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ev = instance.get_latest_materialization_event(dg.AssetKey("mri_release"))
        return instance.get_runs_count(), ev.run_id if ev else None


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The process's temp folder, to see what a command leaves there."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def test_reproduce_from_a_moved_input_is_byte_identical_and_leaves_nothing(made, scratch, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(made["home"]))
    before = _production(made["home"])
    assert before[0] == 1 and before[1] is not None
    code = main(["reproduce", str(made["release"]), "--input", str(made["moved"])])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "byte-identical" in out
    assert any(line.startswith("reproduce [") and " s] " in line for line in err.splitlines())
    assert f"input read from {made['moved']}" in err
    assert list(scratch.iterdir()) == [], "reproduce left temp files behind"
    assert _production(made["home"]) == before, "reproduce wrote into the production Dagster instance"


def test_without_input_a_moved_folder_is_one_line_and_exit_2(made, scratch, capsys):
    assert main(["reproduce", str(made["release"])]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert "--input" in line and "not a folder" in line
    assert list(scratch.iterdir()) == []


def test_an_input_with_other_bytes_is_one_line_and_exit_2(made, tmp_path, scratch, capsys):
    other = tmp_path / "other"
    shutil.copytree(made["moved"], other)
    victim = sorted(other.glob("*.nii.gz"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert main(["reproduce", str(made["release"]), "--input", str(other)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("reproduce [")]
    assert len(err) == 1 and victim.name in err[0] and "sha256" in err[0]
    assert list(scratch.iterdir()) == []


def _flipped_copy(release: Path, root: Path, name: str) -> Path:
    """The release copied into another store with one byte of `name` flipped (manifest untouched)."""
    copy = root / release.parent.name / release.name
    shutil.copytree(release, copy)
    target = copy / name
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return copy


def test_a_flipped_byte_on_disk_is_a_difference(made, tmp_path, scratch, capsys):
    forged = _flipped_copy(made["release"], tmp_path / "store", "synthetic_slices.nii")
    code = main(["reproduce", str(forged), "--input", str(made["moved"])])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "synthetic_slices.nii: bytes on disk differ" in captured.err
    assert "byte-identical" not in captured.out
    # pointed at the forged release's own store, the re-run still writes its own folder
    assert main(["reproduce", str(forged), "--input", str(made["moved"]), "--out", str(forged.parent.parent)]) == 2
    assert "new or empty folder" in capsys.readouterr().err
    assert list(scratch.iterdir()) == []


def test_release_into_an_existing_id_with_other_bytes_is_not_published(made, tmp_path, capsys):
    store = tmp_path / "store"
    forged = _flipped_copy(made["release"], store, "positions.csv")
    code = main(["mri-release", "--data", str(made["moved"]), "--model", "r3gan_positional", "--budget", "tiny",
                 "--out", str(store), "--config", str(made["config"])])
    captured = capsys.readouterr()
    assert code == 3, captured.err
    assert "published" not in captured.out
    assert "already exists with other contents" in captured.err and "positions.csv" in captured.err
    assert list((forged.parent / "refusals").glob("*.json"))


def test_existing_release_problems_names_each_mismatch(made):
    release = made["release"]
    files = {p.name: p.read_bytes() for p in release.iterdir()}
    sha = json.loads((release / "manifest.json").read_text())["synthetic_sha256"]
    assert existing_release_problems(release, files, sha) == []
    assert existing_release_problems(release, {**files, "positions.csv": b"x"}, sha) == \
        ["positions.csv: bytes on disk differ from the run's"]
    assert existing_release_problems(release, files, "0" * 64) == \
        ["manifest.json: synthetic_sha256 is not this candidate's"]
    extra = {**files, "synthetic_volume2.nii": b"x"}
    assert existing_release_problems(release, extra, sha) == [f"synthetic_volume2.nii: missing from {release}"]


def test_an_interrupted_reproduce_leaves_no_temp_folder(made, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}, "TMPDIR": str(scratch)}
    # Ctrl-C as a terminal delivers it: a suite started in the background (`nohup make test &`) runs
    # with SIGINT ignored, and a child inherits an ignored signal
    proc = subprocess.Popen([sys.executable, "-m", "synth_pipeline.cli", "reproduce", str(made["release"]),
                             "--input", str(made["moved"])], env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stderr:
        if "re-running" in line:
            break
    # signalled the moment the re-run starts: a tiny MRI re-run takes seconds on a fast machine
    proc.send_signal(signal.SIGINT)
    assert [p.name.startswith("synth-reproduce-") for p in scratch.iterdir()] == [True], "it works under TMPDIR"
    proc.stderr.read()
    assert proc.wait(timeout=120) != 0
    assert list(scratch.iterdir()) == []


def test_the_input_location_is_no_difference_but_a_metric_is():
    from synth_pipeline.reproduce import manifest_differences

    def manifest(where: str, dcr: float) -> dict:
        return {"release_id": "20261202-copula-abc", "input": {"path": f"{where}/t.csv", "sha256": "aa"},
                "config": {"data": f"{where}/t.csv", "seed": 0},
                "schema": {"dataset": "t", "source": f"{where}/t.csv", "columns": [{"name": "x"}]},
                "gates": [{"gate": "dcr_gate", "passed": True, "metrics": [{"name": "dcr_share", "value": dcr}]}]}

    assert manifest_differences(manifest("/a", 0.5), manifest("/b", 0.5 * (1 + 1e-12))) == []
    (diff,) = manifest_differences(manifest("/a", 0.5), manifest("/b", 0.51))
    assert diff.startswith("metric dcr_gate:dcr_share: (0.5,")
