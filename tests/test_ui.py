"""The Dagster UI an auditor uses: after real releases of two datasets on one instance, the webserver
shows the lineage from the raw input to release, the three gate checks, and the release metadata
(verdict, dataset, input hash, the gate table and the link to report.html). Checked in headless
Chromium; screenshots are saved under test-artifacts/."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from synth_pipeline.cli import run_release
from synth_pipeline.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ASSETS = ("raw_table", "validated_table", "train_split", "holdout_split", "fitted_generator", "synthetic_candidate",
          "fidelity_report", "utility_report", "privacy_report", "release")


MRI_ASSETS = ("mri_slices", "mri_train_slices", "mri_holdout_slices", "mri_fitted_generator", "mri_synthetic_slices",
              "mri_synthetic_volume", "mri_image_metrics", "mri_release")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing; `make browsers` installs it")
        pytest.skip(f"{CHROMIUM} missing; run `make browsers`")
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    for data in ("gbsg2", "actg175"):  # two datasets on one instance; actg175's release is the latest
        outcome = run_release(RunConfig.from_dict({"data": data, "generator": "gaussian_copula"}), home / "releases", instance=instance)
        assert outcome.status == "published", outcome.message
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-m", "synth_pipeline.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=home,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not start within 120 s")
        yield base, outcome
    finally:
        server.terminate()
        server.wait(timeout=30)


def _chromium(url: str, tmp: Path, *mode: str) -> str:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp}", "--virtual-time-budget=20000", "--window-size=1400,900", *mode, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=180).stdout


@pytest.mark.parametrize(
    "page, expected",
    [
        # two groups: the global lineage page collapses them, so read each group's asset list
        ("locations/synth_pipeline.definitions/asset-groups/tabular/list", ("raw_input", *ASSETS)),
        ("locations/synth_pipeline.definitions/asset-groups/mri/list", MRI_ASSETS),
        ("assets/mri_image_metrics?view=checks", ("mri_memorisation_gate", "mri_fidelity_gate")),
        ("assets/synthetic_candidate?view=checks", ("dcr_gate", "linkability_gate", "tstr_gate")),
        ("assets/release", ("verdict", "published", "release_id", "synthetic_sha256", "actg175", "input_sha256",
                            "dcr_gate", "linkability_gate", "tstr_gate", "report.html")),
    ],
)
def test_ui_shows_lineage_checks_and_release_metadata(webserver, tmp_path, page, expected):
    base, outcome = webserver
    dom = _chromium(f"{base}/{page}", tmp_path / "profile", "--dump-dom")
    missing = [name for name in expected if name not in dom]
    assert not missing, f"{page}: not shown: {missing}"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"ui-{page.split('?')[0].removeprefix('locations/synth_pipeline.definitions/').replace('/', '-')}.png"
    _chromium(f"{base}/{page}", tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
