"""Unattended operation: failure alerts reach a local receiver, bad input is not retried, the
watched-folder sensor starts one run per new file, and the job definitions validate."""

import json
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from assets.operations import new_input_file, release_job
from resources import AlertWebhook, ComputeDevice, DaskCluster, ParquetIOManager, PipelineSettings, ReleaseStore
from synth_pipeline.definitions import ASSETS, GATE_CHECKS


@pytest.fixture
def receiver():
    """A local HTTP endpoint standing in for the team's channel."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_failed_run_alerts_once_and_bad_input_is_not_retried(tmp_path, receiver):
    url, received = receiver
    defs = dg.Definitions(
        assets=ASSETS, asset_checks=GATE_CHECKS, jobs=[release_job],
        resources={
            "settings": PipelineSettings(data=str(tmp_path / "missing.csv"), target="death"),
            "io_manager": ParquetIOManager(base_dir=str(tmp_path / "work")),
            "release_store": ReleaseStore(root=str(tmp_path / "out")),
            "device": ComputeDevice(),
            "cluster": DaskCluster(),
            "alerts": AlertWebhook(url=url),
        },
    )
    result = defs.resolve_job_def("release_job").execute_in_process(raise_on_error=False)
    assert not result.success
    restarts = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert restarts == []  # bad input is final, the retry policy does not repeat it
    assert len(received) == 1
    alert = received[0]
    assert alert["step"] == "raw_table" and alert["run_id"] == result.run_id
    assert "missing.csv" in alert["error"]


def test_alert_delivery_failure_is_not_a_second_failure():
    assert AlertWebhook(url="http://127.0.0.1:9/nothing-listens", timeout_seconds=0.5).send({"x": 1}) is False
    assert AlertWebhook().send({"x": 1}) is False  # no url: alerts off


def test_sensor_starts_one_run_per_new_file_with_its_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_WATCH_DIR", str(tmp_path))
    (tmp_path / "ward7.csv").write_text("a,b,death\n1,2,dead\n")
    (tmp_path / "ward7.json").write_text(json.dumps({"target": "death", "generator": "gaussian_copula"}))
    (tmp_path / "no_config.csv").write_text("a,b\n1,2\n")
    requests = new_input_file(dg.build_sensor_context())
    assert [r.tags["dataset"] for r in requests] == ["ward7"]
    settings = requests[0].run_config["resources"]["settings"]["config"]
    assert settings["target"] == "death" and settings["data"] == str((tmp_path / "ward7.csv").resolve())
    again = new_input_file(dg.build_sensor_context())
    assert again[0].run_key == requests[0].run_key  # same file, same key: Dagster launches it once
    (tmp_path / "ward7.csv").write_text("a,b,death\n1,2,dead\n3,4,alive\n")
    assert new_input_file(dg.build_sensor_context())[0].run_key != requests[0].run_key


def test_sensor_skips_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_WATCH_DIR", str(tmp_path / "nope"))
    assert isinstance(new_input_file(dg.build_sensor_context()), dg.SkipReason)


def test_scheduled_and_sensed_runs_carry_the_deployment_run_config(tmp_path, monkeypatch):
    """$SYNTH_RUN_CONFIG (the image names deploy/k8s/run_config.yaml) goes into every run the nightly
    schedule and the file sensor request, beside each run's own settings; unset, nothing is added; an
    unreadable file starts nothing and says which."""
    from datetime import datetime, timezone

    import yaml

    from assets.operations import RUN_CONFIG_ENV, nightly_release

    shipped = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "run_config.yaml"
    execution = yaml.safe_load(shipped.read_text())["execution"]
    monkeypatch.setenv("SYNTH_WATCH_DIR", str(tmp_path))
    (tmp_path / "ward7.csv").write_text("a,b,death\n1,2,dead\n")
    (tmp_path / "ward7.json").write_text(json.dumps({"target": "death"}))
    tick = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 2, tzinfo=timezone.utc))

    def requests():
        return [*nightly_release(tick), *new_input_file(dg.build_sensor_context())]

    monkeypatch.delenv(RUN_CONFIG_ENV, raising=False)
    plain = requests()
    assert len(plain) > 1 and all(set(r.run_config) == {"resources"} for r in plain)
    monkeypatch.setenv(RUN_CONFIG_ENV, str(shipped))
    carried = requests()
    assert [r.tags for r in carried] == [r.tags for r in plain]
    for before, after in zip(plain, carried):
        assert after.run_config == {**before.run_config, "execution": execution}
    missing = tmp_path / "missing.yaml"
    monkeypatch.setenv(RUN_CONFIG_ENV, str(missing))
    for skipped in (nightly_release(tick), new_input_file(dg.build_sensor_context())):
        assert isinstance(skipped, dg.SkipReason) and f"{RUN_CONFIG_ENV}={missing}" in skipped.skip_message
