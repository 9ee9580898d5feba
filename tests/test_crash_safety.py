"""Crash-safety and concurrency with real processes: a publisher killed at any point leaves a complete
release or none; two runs for the same dataset and day leave exactly one release."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth_pipeline.kernel import audit

KILL_MID_PUBLISH = r"""
import os, sys, time
import synth_pipeline.kernel as release
root = sys.argv[1]
real_rename = os.rename
def slow_rename(src, dst):
    print("RENAMING", flush=True)
    time.sleep(60)
    real_rename(src, dst)
release.os.rename = slow_rename
release.publish(root, "flchain", "20261125-x-abc", {"synthetic.parquet": b"PAR1" * 1000, "report.html": b"<html>"},
                {"verdict": "published"})
"""


def _releases(root: Path) -> list[Path]:
    return [p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".") and p.name != "refusals"]


def test_publisher_killed_mid_publish_leaves_no_release_and_the_next_publish_succeeds(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILL_MID_PUBLISH, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "RENAMING"  # every file written, rename pending
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _releases(tmp_path) == []  # the temp folder is not a release
    assert list((tmp_path / "flchain").glob(".tmp-*"))
    from synth_pipeline.kernel import publish

    path = publish(tmp_path, "flchain", "20261125-x-abc", {"synthetic.parquet": b"PAR1", "report.html": b"<p>"},
                   {"verdict": "published"})
    assert audit(path).ok
    assert not list((tmp_path / "flchain").glob(".tmp-*"))  # the dead publisher's temp is cleaned up


def _cli(out: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.Popen([sys.executable, "-m", "synth_pipeline.cli", "release", "--data", "actg175",
                             "--generator", "gaussian_copula", "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)


@pytest.mark.parametrize("kill_after", [3.0, 9.0, 15.0])
def test_release_run_killed_at_any_point_leaves_a_complete_release_or_none(tmp_path, kill_after):
    proc = _cli(tmp_path)
    time.sleep(kill_after)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for rel in _releases(tmp_path):
        assert audit(rel).ok, audit(rel).problems


def test_two_concurrent_runs_for_the_same_day_publish_exactly_one_release(tmp_path):
    first, second = _cli(tmp_path), _cli(tmp_path)
    codes = [p.wait(timeout=600) for p in (first, second)]
    assert codes == [0, 0], [p.stderr.read() for p in (first, second)]
    [rel] = _releases(tmp_path)
    assert audit(rel).ok


INTERRUPT_IN_A_FINALISER = r"""
import gc, os, signal, sys, time
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._utils.interrupts import capture_interrupts, raise_interrupts_as
from synth_pipeline import cli

if sys.argv[1] == "cli":
    cli.main(["generators", "--params", "copy"])  # the CLI's entry point, as `synth-pipeline` runs it
    assert sys.unraisablehook is cli._redeliver_interrupt


class Finalised:
    def __del__(self):  # Ctrl-C arrives while the garbage collector runs this
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(100_000))


with capture_interrupts():  # as Dagster runs a step
    try:
        with raise_interrupts_as(DagsterExecutionInterruptedError):
            Finalised()
            gc.collect()
            time.sleep(2)
        print("went on")
    except DagsterExecutionInterruptedError:
        print("interrupted")
"""


@pytest.mark.parametrize("entry,outcome", [("plain", "went on"), ("cli", "interrupted")])
def test_ctrl_c_raised_inside_a_finaliser_still_stops_a_cli_run(entry, outcome):
    """Dagster raises an interrupt wherever the main thread is; inside a finaliser Python only prints
    it (`plain`: the step goes on, as an interrupted `reproduce` once did, publishing and exiting 0).
    The CLI sends it again once the finaliser has returned."""
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_IN_A_FINALISER, entry], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == outcome, proc.stderr[-2000:]
