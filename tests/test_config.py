"""One configuration model: the --config JSON, a catalogue entry and the Dagster run config are the
same pydantic model — strict, finite, in range, no unknown keys, one BadInput line naming the field —
and the catalogue is checked whole before anything runs."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from resources import MriSettings, PipelineSettings
from synth_pipeline.catalogue import load_catalogue
from synth_pipeline.config import SCHEMA_PATH, RunConfig, Thresholds, json_schema
from synth_pipeline.errors import BadInput
from synth_pipeline.imaging.config import MriConfig
from synth_pipeline.report import render_report

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "synth_pipeline.cli"]


@pytest.mark.parametrize(("body", "field"), [
    ('{"thresholds": {"memorisation_max": 5}}', "thresholds.memorisation_max"),          # switches the gate off
    ('{"thresholds": {"fidelity_trend_margin_max": 1.0}}', "thresholds.fidelity_trend_margin_max"),  # would pass anything
    ('{"thresholds": {"fidelity_shape_margin_max": null}}', "thresholds.fidelity_shape_margin_max"),  # no "gate off"
    ('{"thresholds": {"linkability_ci_high_max": Infinity}}', "thresholds.linkability_ci_high_max"),
    ('{"thresholds": {"dcr_share_max": NaN}}', "thresholds.dcr_share_max"),
    ('{"thresholds": {"memorisation_max": "0.1"}}', "thresholds.memorisation_max"),      # a string, not a number
    ('{"thresholds": {"tstr_ratio_min": -0.1}}', "thresholds.tstr_ratio_min"),
    ('{"thresholds": "strict"}', "thresholds"),
    ('{"thresholds": {"memorisation_maxx": 0.1}}', "thresholds.memorisation_maxx"),
    ('{"link_attacks": true}', "link_attacks"),
    ('{"seed": 1.5}', "seed"),
    ('{"holdout_fraction": 0.9}', "holdout_fraction"),
    ('{"drop": "futime"}', "drop"),
    ('{"generatr": "ctgan"}', "generatr"),
    ('{"on_rare_categories": "keep"}', "on_rare_categories"),
    ('{"small_cell_k": 1}', "small_cell_k"),
    ('{"near_copy_quantile": 0.6}', "near_copy_quantile"),  # redraws most of a faithful sample
    ('{"near_copy_quantile": -0.01}', "near_copy_quantile"),
])
def test_a_bad_value_is_one_line_naming_the_field(body, field):
    with pytest.raises(BadInput) as e:
        RunConfig.from_dict(json.loads(body))
    assert field in str(e.value) and "\n" not in str(e.value)


def test_cli_refuses_an_infinite_threshold_with_exit_2_and_writes_nothing(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"thresholds": {"memorisation_max": Infinity}}')
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    proc = subprocess.run([*CLI, "release", "--data", "actg175", "--config", str(cfg), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {cfg}: thresholds.memorisation_max: Input should be a finite "
                                                "number (got inf)"]
    assert not (tmp_path / "o").exists()


def test_defaults_roundtrip_and_a_looser_threshold_is_a_recorded_override():
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()
    assert json.loads(json.dumps(RunConfig().to_dict(), allow_nan=False)) == RunConfig().to_dict()
    assert RunConfig().overrides() == []
    tighter = RunConfig.from_dict({"thresholds": {"memorisation_max": 0.05, "tstr_ratio_min": 0.95}})
    assert tighter.overrides() == []
    looser = RunConfig.from_dict({"thresholds": {"memorisation_max": 0.3, "tstr_ratio_min": 0.5}})
    assert [(o["threshold"], o["value"], o["default"]) for o in looser.overrides()] == [
        ("memorisation_max", 0.3, Thresholds().memorisation_max), ("tstr_ratio_min", 0.5, 0.9)]
    off = MriConfig.from_dict({"thresholds": {"fid_ratio_max": None}})
    assert off.overrides()[0]["threshold"] == "fid_ratio_max" and off.overrides()[0]["note"] == "gate off"


def test_auto_is_the_default_generator_wherever_a_run_is_configured():
    """`auto` became the default once its FLCHAIN fits measured under five minutes here (README,
    Choosing a generator): config, Dagster settings, the Python API, the shipped catalogue, `make run`."""
    from synth_pipeline.api import _config

    assert RunConfig().generator == "auto" and PipelineSettings().run_config().generator == "auto"
    assert _config({}, data="flchain", target="death").generator == "auto"
    assert {e.run_config().generator for e in load_catalogue(ROOT / "catalogue.yaml").datasets} == {"auto"}
    run_recipe = (ROOT / "Makefile").read_text().split("\nrun: ")[1].split("\n\n")[0]
    assert "synth-pipeline release" in run_recipe and "--generator" not in run_recipe


def test_the_report_names_an_override_on_its_first_screen():
    manifest = {"verdict": "published", "dataset": "x", "config": {}, "gates": [],
                "overrides": RunConfig.from_dict({"thresholds": {"dcr_share_max": 0.7}}).overrides()}
    page = render_report(manifest)
    assert page.index("id='overrides'") < page.index("<h2>Gates</h2>")
    assert "dcr_share_max" in page and "0.7" in page and "Deliberate override" in page
    assert "id='overrides'" not in render_report({**manifest, "overrides": []})


def test_json_schema_file_is_the_models_schema():
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema(), (
        "docs/config.schema.json is stale: regenerate it with python -m synth_pipeline.config")
    props = json_schema()["$defs"]["run_config"]["$defs"]["Thresholds"]["properties"]
    assert props["memorisation_max"]["maximum"] == 1.0 and props["memorisation_max"]["minimum"] == 0.0


def test_dagster_settings_are_the_same_model():
    cfg = RunConfig.from_dict({"data": "gbsg2", "drop": ["age"], "generator_params": {"epochs": 3},
                               "thresholds": {"memorisation_max": 0.2}})
    assert PipelineSettings.from_run_config(cfg).run_config() == cfg
    assert PipelineSettings().run_config() == RunConfig()
    assert MriSettings.from_mri_config(MriConfig(size=64)).mri_config() == MriConfig(size=64)
    with pytest.raises(BadInput, match=r"settings: thresholds\.memorisation_max"):
        PipelineSettings(thresholds={"memorisation_max": 5.0}).run_config()

    @dg.asset
    def probe(settings: PipelineSettings) -> None:
        assert settings.run_config().thresholds.dcr_share_max == 0.5

    job = dg.Definitions(assets=[probe], resources={"settings": PipelineSettings()}).resolve_implicit_global_asset_job_def()
    nested = {"resources": {"settings": {"config": {"data": "gbsg2", "thresholds": {"dcr_share_max": 0.5}}}}}
    assert dg.validate_run_config(job, nested)  # the --config JSON shape is the Dagster run config shape
    assert job.execute_in_process(run_config=nested).success
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"resources": {"settings": {"config": {"thresholds": {"dcr_share_max": "0.5"}}}}})


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "catalogue.yaml"
    p.write_text(text)
    return p


def test_shipped_catalogue_is_the_bundled_tables():
    from synth_pipeline.data import BUNDLED

    cat = load_catalogue(ROOT / "catalogue.yaml")
    assert sorted(cat.names()) == sorted(BUNDLED)
    assert cat.entry("gbsg2").run_config() == RunConfig(data="gbsg2", name="gbsg2")


@pytest.mark.parametrize(("entry", "needle"), [
    ("{name: t, path: actg175, drop: [nope]}", "entry 't': drop: unknown column 'nope'"),
    ("{name: t, path: actg175, sensitive_columns: [cd4x]}", "entry 't': sensitive_columns: unknown column 'cd4x'"),
    ("{name: t, path: actg175, thresholds: {memorisation_max: 1.5}}", "entry 't': thresholds.memorisation_max"),
    ("{name: t, path: actg175, seed: '3'}", "entry 't': seed"),
    ("{name: t, path: actg175, colour: red}", "entry 't': unknown key 'colour'"),
    ("{name: t, data: actg175}", "entry 't': 'data' is not a catalogue key"),
    ("{name: t, path: actg175, sql: 'select 1', connection: X}", "entry 't': give exactly one source"),
    ("{name: t, path: actg175, cron: 'at two'}", "entry 't': cron"),
    ("{name: '../t', path: actg175}", "entry '../t': name"),
    ("{path: actg175}", "entry '#1': name: Field required"),
])
def test_a_bad_catalogue_entry_is_refused_on_load_naming_entry_and_field(tmp_path, entry, needle):
    p = _write(tmp_path, f"datasets:\n  - {{name: ok, path: gbsg2}}\n  - {entry}\n".replace("#1", "#2"))
    with pytest.raises(BadInput) as e:
        load_catalogue(p)
    assert needle.replace("#1", "#2") in str(e.value) and "\n" not in str(e.value)


def test_a_file_entry_is_checked_against_its_header_and_needs_a_target(tmp_path):
    (tmp_path / "ward.csv").write_text("age;sex;death\n1;F;dead\n")
    with pytest.raises(BadInput, match="entry 'ward': target: required"):
        load_catalogue(_write(tmp_path, f"datasets:\n  - {{name: ward, path: {tmp_path / 'ward.csv'}}}\n"))
    with pytest.raises(BadInput, match="entry 'ward': id_columns: unknown column 'mrn'"):
        load_catalogue(_write(tmp_path, f"datasets:\n  - {{name: ward, path: {tmp_path / 'ward.csv'}, target: death, "
                                        "id_columns: [mrn]}\n"))
    ok = load_catalogue(_write(tmp_path, f"datasets:\n  - {{name: ward, path: {tmp_path / 'ward.csv'}, target: death}}\n"))
    assert ok.entry("ward").run_config().data == str(tmp_path / "ward.csv")


def test_cli_runs_nothing_for_a_bad_catalogue(tmp_path):
    p = _write(tmp_path, "datasets:\n  - {name: a, path: actg175}\n  - {name: b, path: gbsg2, drop: [nope]}\n")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    proc = subprocess.run([*CLI, "release", "--catalogue", str(p), "--dataset", "a", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "entry 'b': drop: unknown column 'nope'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_schedules_launch_one_run_per_entry_and_nothing_for_a_bad_catalogue(tmp_path, monkeypatch):
    from assets.operations import entry_schedules, nightly_release

    p = _write(tmp_path, "datasets:\n  - {name: a, path: actg175, generator: smote}\n"
                         "  - {name: b, path: gbsg2}\n  - {name: c, path: flchain, cron: '30 3 * * 1'}\n")
    monkeypatch.setenv("SYNTH_CATALOGUE", str(p))
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 2, tzinfo=timezone.utc))
    requests = nightly_release(ctx)
    assert [r.tags["dataset"] for r in requests] == ["a", "b"]
    settings = requests[0].run_config["resources"]["settings"]["config"]
    assert RunConfig.from_dict(settings) == load_catalogue(p).entry("a").run_config()
    [own] = entry_schedules()
    assert own.name == "release_c" and own.cron_schedule == "30 3 * * 1"
    assert [r.tags["dataset"] for r in own.evaluate_tick(ctx).run_requests] == ["c"]
    _write(tmp_path, "datasets:\n  - {name: a, path: actg175, thresholds: {tstr_ratio_min: 2}}\n")
    skipped = nightly_release(ctx)
    assert isinstance(skipped, dg.SkipReason) and "entry 'a': thresholds.tstr_ratio_min" in skipped.skip_message


def test_ui_and_sensor_launch_by_entry_name(tmp_path, monkeypatch):
    from assets.operations import new_input_file

    p = _write(tmp_path, "datasets:\n  - {name: ward7, path: actg175, target: cens, generator: smote}\n")
    monkeypatch.setenv("SYNTH_CATALOGUE", str(p))
    assert PipelineSettings(catalogue_entry="ward7").run_config().generator == "smote"
    with pytest.raises(BadInput, match="catalogue_entry 'ward7' is set together with generator"):
        PipelineSettings(catalogue_entry="ward7", generator="ctgan").run_config()
    with pytest.raises(BadInput, match="no dataset named 'ward8'"):
        PipelineSettings(catalogue_entry="ward8").run_config()
    watch = tmp_path / "incoming"
    watch.mkdir()
    monkeypatch.setenv("SYNTH_WATCH_DIR", str(watch))
    (watch / "ward7.csv").write_text("a,b,cens\n1,2,0\n")
    [request] = new_input_file(dg.build_sensor_context())
    settings = request.run_config["resources"]["settings"]["config"]
    assert settings["generator"] == "smote" and settings["data"] == str((watch / "ward7.csv").resolve())


def test_the_readme_catalogue_example_is_a_valid_catalogue(tmp_path):
    import re

    text = re.search(r"```yaml\n(datasets:.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    cat = load_catalogue(_write(tmp_path, text), check_columns=False)  # its sources are examples, not files here
    assert cat.entry("icu_sql").run_config().connection == "ICU_DB_URL" and cat.entry("icu_sql").cron
    assert cat.entry("ward7").run_config().data == "/data/exports/ward7.csv"


def test_sensor_checks_a_dropped_file_against_its_catalogue_entry(tmp_path, monkeypatch):
    from assets.operations import new_input_file

    monkeypatch.setenv("SYNTH_CATALOGUE", str(_write(tmp_path, "datasets:\n  - {name: ward7, path: actg175, target: cens, drop: [days]}\n")))
    watch = tmp_path / "incoming"
    watch.mkdir()
    monkeypatch.setenv("SYNTH_WATCH_DIR", str(watch))
    (watch / "ward7.csv").write_text("a,b,cens\n1,2,0\n")  # no `days` column: the entry does not fit this file
    assert isinstance(new_input_file(dg.build_sensor_context()), dg.SkipReason)
    (watch / "ward7.csv").write_text("a,days,cens\n1,2,0\n")
    assert len(new_input_file(dg.build_sensor_context())) == 1
