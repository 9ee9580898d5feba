"""`synth-pipeline`: the scriptable twin of the Dagster graph (same core, same assets, same gates).

Exit codes for `release`: 0 published · 3 refused by a gate (nothing published) · 2 bad input
(one line on stderr) · 1 unexpected failure.
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from synth_pipeline.errors import BadInput

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3


@dataclass(frozen=True)
class Outcome:
    status: str  # "published" | "refused" | "bad_input" | "error"
    message: str
    run_id: str | None = None
    path: str | None = None

    @property
    def exit_code(self) -> int:
        return {"published": EXIT_OK, "refused": EXIT_REFUSED, "bad_input": EXIT_BAD_INPUT}.get(self.status, EXIT_ERROR)


def _cols(value: str | None) -> tuple[str, ...] | None:
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else None


def _conditions(value: str | None) -> dict[str, str] | None:
    """`target=VALUE` -> {"target": "VALUE"}: sample only that class."""
    if not value:
        return None
    key, sep, val = value.partition("=")
    if not sep or not key.strip() or not val.strip():
        raise BadInput(f"--conditions {value!r}: expected TARGET=VALUE, e.g. death=dead")
    return {key.strip(): val.strip()}


def _error_chain(err):
    while err is not None:
        yield err
        err = err.cause or getattr(err, "context", None)


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def _materialize(assets: list, resources: dict, *, verbose: bool, tags: dict[str, str] | None, instance):
    """Materialize `assets` in-process with a fresh intermediate folder for this run."""
    import dagster as dg

    from resources import ComputeDevice, ParquetIOManager

    with tempfile.TemporaryDirectory(prefix="synth-work-") as work:
        return dg.materialize(
            assets,
            resources={"io_manager": ParquetIOManager(base_dir=work), "device": ComputeDevice(), **resources},
            run_config={"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}},
            instance=instance or _instance(),
            tags=tags or {},
            raise_on_error=False,
        )


def _classify(result, out: Path, *, release_node: str, dataset_node: str) -> Outcome:
    """Published, refused (with every refusal reason), bad input (its one line) or an error."""
    run_id = result.run_id
    if result.success:
        meta = result.asset_materializations_for_node(release_node)[0].metadata
        return Outcome("published", f"published {meta['path'].value}", run_id, meta["path"].value)
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        for err in _error_chain(event.step_failure_data.error):
            if err.cls_name == "BadInput":
                return Outcome("bad_input", err.message.strip().splitlines()[-1].removeprefix("synth_pipeline.errors.BadInput: "), run_id)
    mats = result.asset_materializations_for_node(dataset_node)
    dataset = str(mats[0].metadata["dataset"].value) if mats else "_"
    refusal = out / dataset / "refusals" / f"{run_id}.json"
    if failed or refusal.exists():
        reasons = [f"{e.check_name}: {e.metadata['reason'].value}" for e in failed if "reason" in e.metadata]
        if refusal.exists():
            reasons = [f"{x['gate']}: {x['reason']}" for x in json.loads(refusal.read_text())["entries"]]
        return Outcome("refused", "refused (nothing published): " + " | ".join(reasons), run_id, str(refusal))
    errors = [e.step_failure_data.error.message.strip().splitlines()[0] for e in result.all_events if e.is_step_failure]
    return Outcome("error", "run failed: " + (errors[0] if errors else "unknown error"), run_id)


def run_release(cfg, out: Path, *, verbose: bool = False, tags: dict[str, str] | None = None, instance=None) -> Outcome:
    """Materialize the whole tabular asset graph for one config, in-process, and classify the result."""
    from resources import PipelineSettings, ReleaseStore
    from synth_pipeline.definitions import ASSETS, GATE_CHECKS

    result = _materialize([*ASSETS, *GATE_CHECKS], {"settings": PipelineSettings.from_run_config(cfg),
                                                    "release_store": ReleaseStore(root=str(out))},
                          verbose=verbose, tags=tags, instance=instance)
    return _classify(result, out, release_node="release", dataset_node="raw_table")


def run_mri_release(cfg, out: Path, *, verbose: bool = False, tags: dict[str, str] | None = None,
                    instance=None) -> Outcome:
    """Materialize the MRI asset group for one config, in-process, and classify the result."""
    from resources import MriSettings, ReleaseStore
    from synth_pipeline.definitions import MRI_ASSETS, MRI_GATE_CHECKS

    result = _materialize([*MRI_ASSETS, *MRI_GATE_CHECKS], {"mri_settings": MriSettings.from_mri_config(cfg),
                                                            "release_store": ReleaseStore(root=str(out))},
                          verbose=verbose, tags=tags, instance=instance)
    return _classify(result, out, release_node="mri_release", dataset_node="mri_slices")


def cmd_release(args) -> int:
    from synth_pipeline.config import load_config

    cfg = load_config(args.config).with_overrides(
        data=args.data, target=args.target, generator=args.generator, seed=args.seed,
        drop=_cols(args.drop), id_columns=_cols(args.id_columns), conditions=_conditions(args.conditions),
        on_identifiers=args.on_identifiers, sensitive_columns=_cols(args.sensitive_columns),
    )
    print(f"synth-pipeline: releasing {cfg.data} with {cfg.generator} (seed {cfg.seed}) into {args.out}", file=sys.stderr)
    outcome = run_release(cfg, Path(args.out), verbose=args.verbose)
    print(outcome.message, file=sys.stdout if outcome.status == "published" else sys.stderr)
    return outcome.exit_code


def _read_table(path: str):
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: file not found")
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)


def cmd_evaluate(args) -> int:
    from synth_pipeline.config import load_config
    from synth_pipeline.data import load_dataset
    from synth_pipeline.evaluation import GATE_EVALUATORS, fidelity, privacy_metrics, run_gate, utility_metrics
    from synth_pipeline.schema import conform

    cfg = load_config(args.config).with_overrides(seed=args.seed)
    schema = load_dataset(args.train, target=args.target, sensitive=cfg.sensitive_columns).schema
    try:
        train, holdout, synthetic = (conform(_read_table(p), schema) for p in (args.train, args.holdout, args.synthetic))
    except KeyError as e:
        raise BadInput(f"holdout/synthetic table does not match the train columns: {e}") from None
    gates = [run_gate(g, synthetic, train, holdout, schema, cfg) for g in GATE_EVALUATORS]
    reports = {
        name: [m.to_dict() for m in fn(synthetic, train, holdout, schema, cfg)]
        for name, fn in (("fidelity", fidelity), ("utility", utility_metrics), ("privacy", privacy_metrics))
    }
    verdict = "pass" if all(g.passed for g in gates) else "refuse"
    if args.json:
        print(json.dumps({"verdict": verdict, "gates": [g.to_dict() for g in gates], "reports": reports}, indent=2, default=str))
    else:
        for g in gates:
            print(f"{g.gate:18s} {'pass' if g.passed else 'REFUSE':7s} {g.reason}")
        print(f"verdict: {verdict}")
    return EXIT_OK


def cmd_audit(args) -> int:
    from synth_pipeline.release import audit

    result = audit(Path(args.release_dir))
    if result.ok:
        print(f"{args.release_dir}: intact")
        return EXIT_OK
    for p in result.problems:
        print(f"{args.release_dir}: {p}", file=sys.stderr)
    return EXIT_ERROR


def cmd_reproduce(args) -> int:
    from synth_pipeline.reproduce import reproduce

    def run(cfg, out: Path, tags: dict[str, str]) -> Path | None:
        outcome = run_release(cfg, out, tags=tags)
        return Path(outcome.path) if outcome.status == "published" else None

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="synth-reproduce-"))
    result = reproduce(Path(args.release_dir), out, run)
    for note in result.notes:
        print(f"{args.release_dir}: note: {note} (result unchanged)", file=sys.stderr)
    if result.identical:
        print(f"{args.release_dir}: reproduced exactly (byte-identical synthetic.parquet, same metrics) in {result.new_release}")
        return EXIT_OK
    for d in result.differences:
        print(f"{args.release_dir}: {d}", file=sys.stderr)
    return EXIT_ERROR


def cmd_mri_release(args) -> int:
    from synth_pipeline.imaging.config import load_mri_config

    from synth_pipeline.imaging.models.base import make_image_generator

    cfg = load_mri_config(args.config).with_overrides(
        data=args.data, model=args.model, budget=args.budget, seed=args.seed, size=args.size)
    make_image_generator(cfg.model, budget=cfg.budget, **cfg.model_params)  # a bad name fails before any work
    print(f"synth-pipeline: MRI release of {cfg.data} with {cfg.model} ({cfg.budget} budget, seed {cfg.seed}) "
          f"into {args.out}", file=sys.stderr)
    outcome = run_mri_release(cfg, Path(args.out), verbose=args.verbose)
    manifest = Path(outcome.path or "") / "manifest.json"
    if outcome.status == "published" and manifest.is_file():
        for s in json.loads(manifest.read_text())["input"]["skipped"]:
            print(f"skipped {s['file']}: {s['reason']}", file=sys.stderr)
    print(outcome.message, file=sys.stdout if outcome.status == "published" else sys.stderr)
    return outcome.exit_code


def cmd_turing_kit(args) -> int:
    """Blinded montage of real holdout slices and a release's synthetic slices; the key goes elsewhere."""
    import nibabel as nib
    import numpy as np

    from synth_pipeline.imaging import pipeline
    from synth_pipeline.imaging.config import MriConfig
    from synth_pipeline.imaging.turing import make_kit

    release = Path(args.release)
    manifest_path = release / "manifest.json"
    if not manifest_path.is_file():
        raise BadInput(f"{release}: not a release folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("arm") != "mri":
        raise BadInput(f"{release}: not an MRI release")
    cfg = MriConfig.from_dict(manifest["config"])
    _, holdout = pipeline.split(pipeline.ingest(cfg, pipeline.cache_dir()), cfg)
    fake = np.transpose(np.asarray(nib.load(release / "synthetic_slices.nii").dataobj), (2, 0, 1))[:, None]
    kit = make_kit(holdout.images, fake, Path(args.out), n_each=args.n_each, seed=args.seed,
                   key_dir=Path(args.key_dir) if args.key_dir else None)
    print(f"montage {kit.montage}\nanswers template {kit.answers_template}\nanswer key (keep apart) {kit.key}")
    return EXIT_OK


def cmd_turing_score(args) -> int:
    from synth_pipeline.imaging.turing import score

    s = score(Path(args.answers), Path(args.key))
    print(json.dumps(asdict(s), indent=1) if args.json else s.verdict)
    return EXIT_OK


def cmd_generators(args) -> int:
    from synth_pipeline.generators.base import available
    from synth_pipeline.imaging.models.base import available_image_generators

    for name, summary in available().items():
        print(f"{name:18s} {summary}")
    print("\nMRI models (synth-pipeline mri-release --model NAME):")
    for name, summary in available_image_generators().items():
        print(f"{name:18s} {summary}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synth-pipeline", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("release", help="run the gated release for one dataset")
    r.add_argument("--data", help="bundled dataset name (flchain, actg175, gbsg2) or a CSV / Parquet / ARFF path")
    r.add_argument("--target", help="target column (required for a path)")
    r.add_argument("--generator", help="generator name (see `synth-pipeline generators`)")
    r.add_argument("--out", required=True, help="release root folder")
    r.add_argument("--seed", type=int)
    r.add_argument("--config", type=Path, help="JSON run config (keys of RunConfig); flags override it")
    r.add_argument("--drop", help="comma-separated columns to drop (e.g. leaky outcome columns)")
    r.add_argument("--id-columns", help="comma-separated identifier columns to remove")
    r.add_argument("--on-identifiers", choices=("drop", "refuse"),
                   help="direct identifiers found in a file: drop them (default, listed in the manifest) or refuse")
    r.add_argument("--conditions", help="TARGET=VALUE: sample only that class (generators that support it)")
    r.add_argument("--sensitive-columns", help="comma-separated columns an attacker must not infer (inference_gate; "
                   "added to the target and the schema's sensitive columns)")
    r.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step log")
    r.set_defaults(func=cmd_release)

    e = sub.add_parser("evaluate", help="compute the gates and reports for existing tables")
    e.add_argument("--train", required=True)
    e.add_argument("--holdout", required=True)
    e.add_argument("--synthetic", required=True)
    e.add_argument("--target", required=True)
    e.add_argument("--seed", type=int)
    e.add_argument("--config", type=Path)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    a = sub.add_parser("audit", help="re-verify a published release folder")
    a.add_argument("release_dir")
    a.set_defaults(func=cmd_audit)

    rp = sub.add_parser("reproduce", help="re-run a release from its manifest and compare")
    rp.add_argument("release_dir")
    rp.add_argument("--out", help="where the re-run publishes (default: a temporary folder)")
    rp.set_defaults(func=cmd_reproduce)

    m = sub.add_parser("mri-release", help="run the gated brain-MRI release (slices with positional conditioning)")
    m.add_argument("--data", help="'default' (the bundled MNI152 pseudo-cohort) or a folder of NIfTI volumes")
    m.add_argument("--model", help="dcgan, wgan_gp, r3gan_stacked, r3gan_positional, diffusion, or the copy control")
    m.add_argument("--out", required=True, help="release root folder")
    m.add_argument("--budget", choices=("tiny", "default", "full"), help="training budget (default: default)")
    m.add_argument("--seed", type=int)
    m.add_argument("--size", type=int, choices=(32, 64, 128), help="slice size in pixels (default 32)")
    m.add_argument("--config", type=Path, help="JSON MRI config (keys of MriConfig); flags override it")
    m.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step log")
    m.set_defaults(func=cmd_mri_release)

    tk = sub.add_parser("turing-kit", help="make a blinded visual Turing test from an MRI release")
    tk.add_argument("release", help="a published MRI release folder")
    tk.add_argument("--out", required=True, help="folder for the montage and the blank answers.csv (hand it to the reader)")
    tk.add_argument("--key-dir", help="where the answer key goes (default: <out>_key, never inside --out)")
    tk.add_argument("--n-each", type=int, default=20, help="real and synthetic slices each (default 20)")
    tk.add_argument("--seed", type=int, default=0)
    tk.set_defaults(func=cmd_turing_kit)

    ts = sub.add_parser("turing-score", help="score a reader's answers.csv against the answer key")
    ts.add_argument("answers")
    ts.add_argument("key")
    ts.add_argument("--json", action="store_true", help="all figures as JSON")
    ts.set_defaults(func=cmd_turing_score)

    g = sub.add_parser("generators", help="list the generators")
    g.set_defaults(func=cmd_generators)
    return p


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
