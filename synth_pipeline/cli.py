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
EXIT_CODES = "exit codes: 0 published / passes · 3 refused by a gate (nothing published) · 2 bad input (one line on stderr) · 1 unexpected failure"
GENERATORS, MRI_MODELS = "synth_pipeline.generators", "synth_pipeline.imaging.models"


@dataclass(frozen=True)
class Outcome:
    status: str  # "published" | "refused" | "bad_input" | "error"
    message: str
    run_id: str | None = None
    path: str | None = None

    @property
    def exit_code(self) -> int:
        return {"published": EXIT_OK, "refused": EXIT_REFUSED, "bad_input": EXIT_BAD_INPUT}.get(self.status, EXIT_ERROR)


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line on stderr and exit 2, like every other bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message}\n")


def _seed(value: str) -> int:
    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"{seed} must be in [0, 2^32 - 1]")
    return seed


def _out_dir(value: str) -> Path:
    """The release root: created if missing, refused at once when it is a file or not writable (not
    after a whole run)."""
    out = Path(value).expanduser()
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {value}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"--out {value}: cannot create it ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BadInput(f"--out {value}: not writable")
    return out


def _check_name(package: str, what: str, name: str | None, option: str) -> None:
    from synth_pipeline.registry import check_name

    if name is not None:
        check_name(package, what, name, option)


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


EXECUTORS = ("auto", "in_process", "multiprocess")
# `auto` runs a table of at least this many rows with the multiprocess executor: below it, starting a
# Python process per step (imports: Dagster, pandas, scikit-learn, torch) costs more than running the
# gates and reports side by side saves (benchmarks/SCALE.md, "executor").
MULTIPROCESS_MIN_ROWS = 50_000


def parallel_steps() -> int:
    """How many steps the multiprocess executor runs at once: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def choose_executor(executor: str, rows: int | None) -> str:
    """`auto`: multiprocess for a table of MULTIPROCESS_MIN_ROWS rows or more on a machine with two
    cores or more, else in-process; an explicit choice is kept."""
    if executor != "auto":
        return executor
    big = rows is not None and rows >= MULTIPROCESS_MIN_ROWS
    return "multiprocess" if big and parallel_steps() > 1 else "in_process"


def _input_rows(cfg) -> int | None:
    """The input's row count where it is cheap to know (a Parquet or CSV file), else None."""
    from synth_pipeline.data import BUNDLED
    from synth_pipeline.data.readers import table_rows

    if cfg.sql is not None or str(cfg.data).strip().lower() in BUNDLED:
        return None
    return table_rows(Path(cfg.data).expanduser())


def _materialize(job: str, resources: dict[str, dict], *, verbose: bool, tags: dict[str, str] | None, instance,
                 keep_intermediates: bool = False, executor: str = "in_process"):
    """Run `job` (release_job / mri_release_job, as the UI and the schedule do) with `resources` given
    as run config ({resource: its config}), like a launched run. `in_process`: every step in this
    process, one after the other. `multiprocess`: Dagster's multiprocess executor, each step in a
    process of its own, as many at once as there are cores (the gates and the reports side by side);
    it needs a persistent instance, so without one (no $DAGSTER_HOME) the run gets a temporary one,
    and an ephemeral instance passed in (tests, the API without $DAGSTER_HOME) runs in-process.
    The run's intermediates go to its own folder under the CLI's work root, removed when the run
    ends unless kept; a folder left by a killed run is removed by the next run (synth_pipeline.intermediates).
    SIGTERM / Ctrl-C end the run (no retry policy in CLI runs: assets/operations.in_process_jobs)."""
    import dagster as dg

    from synth_pipeline import intermediates
    from synth_pipeline.definitions import RECONSTRUCTABLE_JOBS, default_resources, definitions

    work = intermediates.default_root(cli=True)
    store = resources.get("release_store")
    if store is not None and work.resolve().is_relative_to(Path(store["root"]).resolve()):
        raise BadInput(f"--out {store['root']}: contains the intermediates folder {work}; choose another --out "
                       f"(or set {intermediates.WORK_DIR_ENV})")
    from resources.progress import PROGRESS_START_ENV
    from synth_pipeline.nn.training import progress_enabled

    loggers = {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}
    if progress_enabled() and not verbose:  # a terminal (or SYNTH_PROGRESS=1): one line per step, with times
        loggers["progress"] = {}
    os.environ[PROGRESS_START_ENV] = repr(__import__("time").time())  # step processes inherit the run's start
    io = {"base_dir": str(work), "keep_intermediates": keep_intermediates}
    run_config = {"loggers": loggers,
                  "resources": {k: {"config": v} for k, v in {**resources, "io_manager": io}.items()}}
    instance = instance or _instance()
    if executor != "multiprocess" or instance.is_ephemeral:
        return definitions(default_resources(), in_process=True).resolve_job_def(job).execute_in_process(
            run_config=run_config, instance=instance, tags=tags or {}, raise_on_error=False)
    # forkserver: each step process is forked from a server that has already imported the job's module
    # (Dagster, pandas, scikit-learn, the assets), not started from scratch (seconds per step, minutes
    # on a loaded machine)
    target = RECONSTRUCTABLE_JOBS[job]
    forkserver = {"preload_modules": [target.__module__]}
    run_config["execution"] = {"config": {"multiprocess": {"max_concurrent": parallel_steps(),
                                                           "start_method": {"forkserver": forkserver}}}}
    try:
        return dg.execute_job(dg.reconstructable(target), instance=instance,
                              run_config=run_config, tags=tags or {}, raise_on_error=False)
    finally:  # no step process outlives the run, so none removes the folder at its teardown: the run's owner does
        intermediates.remove_owned(work, os.getpid())


def _run(job: str, resources: dict[str, dict], *, executor: str, rows: int | None, instance, **kw):
    """_materialize with the executor chosen for this table; a temporary persistent instance for a
    multiprocess run when none is given and $DAGSTER_HOME is unset."""
    import dagster as dg

    chosen = choose_executor(executor, rows)
    if chosen == "multiprocess" and instance is None and not os.environ.get("DAGSTER_HOME"):
        # its step workers' start-up lines go to the instance's Python log level: quiet, as in-process runs are
        with dg.DagsterInstance.local_temp(overrides={"python_logs": {"python_log_level": "CRITICAL"}}) as temporary:
            return _materialize(job, resources, instance=temporary, executor=chosen, **kw)
    return _materialize(job, resources, instance=instance, executor=chosen, **kw)


def _dataset_tag(data: str) -> str:
    """The `dataset` run tag: the bundled table's name or the file's stem (as the schema names it)."""
    from synth_pipeline.data import BUNDLED, slugify

    bundled = BUNDLED.get(str(data).strip().lower())
    return bundled.schema.dataset if bundled else slugify(Path(str(data)).stem)


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
        advice = ""
        if refusal.exists():
            entries = json.loads(refusal.read_text())["entries"]
            reasons = [f"{x['gate']}: {x['reason']}" for x in entries]
            advice = next((f"\ntry: {x['remedy']}" for x in entries if x.get("remedy")), "")
        return Outcome("refused", "refused (nothing published): " + " | ".join(reasons)
                       + f"\nrecord: {refusal} (and .html beside it)" + advice, run_id, str(refusal))
    errors = [e.step_failure_data.error.message.strip().splitlines()[0] for e in result.all_events if e.is_step_failure]
    return Outcome("error", "run failed: " + (errors[0] if errors else "unknown error"), run_id)


def run_release(cfg, out: Path, *, verbose: bool = False, tags: dict[str, str] | None = None, instance=None,
                keep_intermediates: bool = False, executor: str = "auto") -> Outcome:
    """Run release_job (the whole tabular asset graph) for one config and classify the result; the
    executor as `choose_executor` picks it for the input's size (see _materialize)."""
    from assets.operations import DATASET_TAG

    result = _run("release_job", {"settings": cfg.to_dict(), "release_store": {"root": str(out)}},
                  executor=executor, rows=_input_rows(cfg), verbose=verbose,
                  tags={DATASET_TAG: _dataset_tag(cfg.data), **(tags or {})}, instance=instance,
                  keep_intermediates=keep_intermediates)
    return _classify(result, out, release_node="release", dataset_node="raw_table")


def run_mri_release(cfg, out: Path, *, verbose: bool = False, tags: dict[str, str] | None = None,
                    instance=None, keep_intermediates: bool = False) -> Outcome:
    """Run mri_release_job (the MRI asset group) for one config, in-process (its steps are one chain
    on one device), and classify the result."""
    from assets.operations import DATASET_TAG
    from synth_pipeline.imaging.pipeline import dataset_name

    result = _run("mri_release_job", {"mri_settings": cfg.to_dict(), "release_store": {"root": str(out)}},
                  executor="in_process", rows=None, verbose=verbose,
                  tags={DATASET_TAG: dataset_name(cfg), **(tags or {})}, instance=instance,
                  keep_intermediates=keep_intermediates)
    return _classify(result, out, release_node="mri_release", dataset_node="mri_slices")


def _base_config(args):
    """--config FILE, or one entry of a catalogue (--catalogue FILE / $SYNTH_CATALOGUE --dataset NAME)."""
    from synth_pipeline.config import load_config

    if args.dataset is None:
        if args.catalogue is not None:
            raise BadInput("--catalogue needs --dataset NAME (the entry to run)")
        return load_config(args.config)
    if args.data is not None or args.config is not None:
        raise BadInput("--dataset runs a catalogue entry: give --data / --config without it, or neither")
    from synth_pipeline.catalogue import load_catalogue

    return load_catalogue(args.catalogue).entry(args.dataset).run_config()


def cmd_release(args) -> int:
    cfg = _base_config(args).with_overrides(
        data=args.data, target=args.target, generator=args.generator, seed=args.seed,
        drop=_cols(args.drop), id_columns=_cols(args.id_columns), conditions=_conditions(args.conditions),
        on_identifiers=args.on_identifiers, on_rare_categories=args.on_rare_categories, small_cell_k=args.small_cell_k,
        sensitive_columns=_cols(args.sensitive_columns),
    )
    _check_name(GENERATORS, "generator", cfg.generator, "--generator")
    out = _out_dir(args.out)
    print(f"synth-pipeline: releasing {cfg.name or cfg.data} with {cfg.generator} (seed {cfg.seed}) into {out}", file=sys.stderr)
    for o in cfg.overrides():
        print(f"synth-pipeline: deliberate override: {o['threshold']} = {o['value']} (default {o['default']}, "
              f"{o['note']}); recorded in the manifest", file=sys.stderr)
    outcome = run_release(cfg, out, verbose=args.verbose, keep_intermediates=args.keep_intermediates,
                          executor=args.executor)
    print(outcome.message, file=sys.stdout if outcome.status == "published" else sys.stderr)
    return outcome.exit_code


def cmd_evaluate(args) -> int:
    from synth_pipeline.config import load_config
    from synth_pipeline.data import load_dataset, read_table
    from synth_pipeline.evaluation import GATE_EVALUATORS, fidelity, privacy_metrics, run_gate, utility_metrics
    from synth_pipeline.schema import conform

    cfg = load_config(args.config).with_overrides(seed=args.seed)
    schema = load_dataset(args.train, target=args.target, sensitive=cfg.sensitive_columns).schema
    try:
        train, holdout, synthetic = (conform(read_table(Path(p)), schema) for p in (args.train, args.holdout, args.synthetic))
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
    return EXIT_OK if verdict == "pass" else EXIT_REFUSED


def _release_materializations(dagster_home: str, asset: str) -> list[dict]:
    """The Dagster instance's materializations of the release asset, as plain metadata dicts."""
    import dagster as dg

    if not Path(dagster_home).is_dir():
        raise BadInput(f"--dagster-home {dagster_home}: not a directory")
    out, cursor = [], None
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        while True:
            page = instance.fetch_materializations(dg.AssetKey(asset), limit=1000, cursor=cursor)
            for rec in page.records:
                meta = rec.asset_materialization.metadata if rec.asset_materialization else {}
                out.append({"run_id": rec.run_id, **{k: getattr(v, "value", v) for k, v in meta.items()}})
            if not page.has_more:
                return out
            cursor = page.cursor


def _release_arm(release_dir: Path) -> str:
    try:
        return str(json.loads((release_dir / "manifest.json").read_text()).get("arm", "tabular"))
    except (OSError, ValueError, AttributeError):
        return "tabular"  # the audit itself reports an unreadable manifest


def cmd_audit(args) -> int:
    from synth_pipeline.audit import ASSET_FOR_ARM, audit_release, audit_store
    from synth_pipeline.ledger import LEDGER_FILE
    from synth_pipeline.signing import load_public_key

    d = Path(args.release_dir)
    keys = [load_public_key(Path(k)) for k in args.public_key or ()]
    home = args.dagster_home
    if not (d / "manifest.json").exists() and (d / LEDGER_FILE).exists():  # a whole release store
        records = {a: _release_materializations(home, a) for a in ASSET_FOR_ARM.values()} if home else None
        result = audit_store(d, public_keys=keys, materializations=records)
    else:
        asset = ASSET_FOR_ARM.get(_release_arm(d), "release")
        result = audit_release(d, public_keys=keys, ledger_path=Path(args.ledger) if args.ledger else None,
                               materializations=_release_materializations(home, asset) if home else None)
    for note in result.notes:
        print(f"{d}: note: {note}", file=sys.stdout if result.ok else sys.stderr)
    if result.ok:
        print(f"{d}: intact")
        return EXIT_OK
    for p in result.problems:
        print(f"{d}: {p}", file=sys.stderr)
    return EXIT_ERROR


def cmd_key(args) -> int:
    """Print the signing key's public half (PEM) or fingerprint; creates the development key if none."""
    from synth_pipeline.signing import load_signing_key, public_pem

    key = load_signing_key()
    if args.fingerprint:
        print(key.fingerprint)
    else:
        print(public_pem(key.private.public_key()), end="")
    kind = "DEVELOPMENT key (set SYNTH_SIGNING_KEY for a real one)" if key.development else "configured key"
    print(f"{kind}: {key.source}", file=sys.stderr)
    return EXIT_OK


def cmd_reproduce(args) -> int:
    """Re-run into a fresh scratch folder on an ephemeral Dagster instance (the production lineage
    under $DAGSTER_HOME is never written); the scratch folder goes whatever happens, Ctrl-C included."""
    import shutil
    import signal
    import time

    from synth_pipeline.reproduce import reproduce

    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"reproduce [{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    scratch = Path(tempfile.mkdtemp(prefix="synth-reproduce-"))
    saved = tempfile.tempdir, signal.signal(signal.SIGTERM, interrupted)
    tempfile.tempdir = str(scratch)  # whatever the re-run leaves in temp folders goes with the scratch folder
    try:
        progress(f"reading {args.release_dir}")
        import dagster as dg

        with dg.DagsterInstance.ephemeral() as instance:
            def run(arm: str, cfg, out: Path, tags: dict[str, str]) -> Path | None:
                runner = run_mri_release if arm == "mri" else run_release
                outcome = runner(cfg, out, tags=tags, instance=instance)
                published = outcome.status == "published"
                progress(f"re-run published {Path(outcome.path).name}" if published else outcome.message)
                return Path(outcome.path) if published else None

            result = reproduce(Path(args.release_dir), Path(args.out) if args.out else scratch / "releases", run,
                               input_path=Path(args.input) if args.input else None, progress=progress)
    finally:
        tempfile.tempdir = saved[0]
        signal.signal(signal.SIGTERM, saved[1])
        shutil.rmtree(scratch, ignore_errors=True)
    for note in result.notes:
        print(f"{args.release_dir}: note: {note}", file=sys.stderr)
    progress("done")
    if result.identical:
        print(f"{args.release_dir}: byte-identical (data files as on disk, same config and metrics)")
        return EXIT_OK
    for d in result.differences:
        print(f"{args.release_dir}: {d}", file=sys.stderr)
    print(f"{args.release_dir}: not reproduced ({len(result.differences)} differences)")
    return EXIT_ERROR


def cmd_mri_release(args) -> int:
    from synth_pipeline.imaging.config import load_mri_config

    cfg = load_mri_config(args.config).with_overrides(
        data=args.data, model=args.model, budget=args.budget, seed=args.seed, size=args.size)
    _check_name(MRI_MODELS, "MRI model", cfg.model, "--model")
    _out_dir(args.out)
    from synth_pipeline.imaging.models.base import make_image_generator

    make_image_generator(cfg.model, budget=cfg.budget, **cfg.model_params)  # bad parameters fail before any work
    print(f"synth-pipeline: MRI release of {cfg.data} with {cfg.model} ({cfg.budget} budget, seed {cfg.seed}) "
          f"into {args.out}", file=sys.stderr)
    outcome = run_mri_release(cfg, Path(args.out), verbose=args.verbose, keep_intermediates=args.keep_intermediates)
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


def _parameters(cls: type) -> list[tuple[str, str]]:
    import inspect

    return [(n, "required" if p.default is inspect.Parameter.empty else repr(p.default))
            for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def cmd_generators(args) -> int:
    from synth_pipeline.registry import registered_names

    if args.params and args.params not in registered_names(GENERATORS) + registered_names(MRI_MODELS):
        _check_name(GENERATORS, "generator", args.params, "--params")
    from synth_pipeline.generators.base import REGISTRY, available
    from synth_pipeline.imaging.models.base import REGISTRY as MRI_REGISTRY, available_image_generators

    if args.params:
        tabular, mri = available(), available_image_generators()
        for arm, listed, registry in (("tabular generator", tabular, REGISTRY), ("MRI model", mri, MRI_REGISTRY)):
            if args.params in listed:
                print(f"{args.params} ({arm}): {listed[args.params]}")
                for name, default in _parameters(registry[args.params]):
                    print(f"  {name:18s} default {default}")
        return EXIT_OK
    for name, summary in available().items():
        print(f"{name:18s} {summary}")
    print("\nMRI models (synth-pipeline mri-release --model NAME):")
    for name, summary in available_image_generators().items():
        print(f"{name:18s} {summary}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from synth_pipeline import __version__

    p = _Parser(prog="synth-pipeline", description=__doc__.splitlines()[0], epilog=EXIT_CODES)
    p.add_argument("--version", action="version", version=f"synth-pipeline {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str, func, epilog: str = EXIT_CODES) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=help, epilog=epilog)
        parser.set_defaults(func=func)
        return parser

    seed_help = "random seed for the split, the fit and the sampling, 0 to 2^32-1 (default 0, or the config's)"
    r = command("release", "run the gated release for one dataset", cmd_release)
    r.add_argument("--data", help="bundled dataset name (flchain, actg175, gbsg2) or a CSV / Parquet / ARFF path "
                                  "(default flchain)")
    r.add_argument("--target", help="target column (required for a path; bundled tables declare theirs)")
    r.add_argument("--generator", help="generator name, see `synth-pipeline generators` (default auto)")
    r.add_argument("--out", required=True, help="release root folder (created if missing)")
    r.add_argument("--seed", type=_seed, help=seed_help)
    r.add_argument("--config", type=Path, help="JSON run config (keys of RunConfig, see docs/); flags override it")
    r.add_argument("--catalogue", help="catalogue YAML (default: $SYNTH_CATALOGUE, else ./catalogue.yaml)")
    r.add_argument("--dataset", help="run this entry of the catalogue (flags override it)")
    r.add_argument("--drop", help="comma-separated columns to drop (e.g. leaky outcome columns)")
    r.add_argument("--id-columns", help="comma-separated identifier columns to remove")
    r.add_argument("--on-identifiers", choices=("drop", "refuse"),
                   help="direct identifiers found in a file: drop them (default, listed in the manifest) or refuse")
    r.add_argument("--on-rare-categories", choices=("pool", "refuse"),
                   help="category values held by fewer than --small-cell-k patients: pool them (default) or refuse")
    r.add_argument("--small-cell-k", type=int, help="the small-cell threshold k (default 5, at least 2; below 5 is "
                                                    "recorded as a deliberate override)")
    r.add_argument("--conditions", help="TARGET=VALUE: sample only that class (generators that support it)")
    r.add_argument("--sensitive-columns", help="comma-separated columns an attacker must not infer (inference_gate; "
                   "added to the target and the schema's sensitive columns)")
    r.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step log")
    r.add_argument("--keep-intermediates", action="store_true",
                   help="keep this run's intermediates (real rows) in $SYNTH_WORK_DIR/<run_id> after it ends")
    r.add_argument("--executor", choices=EXECUTORS, default="auto",
                   help=f"in_process: one step after another in this process; multiprocess: the gates and reports "
                        f"side by side, one process per step, at most one per core; auto (default): multiprocess "
                        f"for a CSV / Parquet input of {MULTIPROCESS_MIN_ROWS:,} rows or more")

    e = command("evaluate", "compute the gates and reports for existing tables (no release)", cmd_evaluate)
    e.add_argument("--train", required=True, help="the real rows the generator was trained on (CSV or Parquet)")
    e.add_argument("--holdout", required=True, help="real rows never trained on, same columns (CSV or Parquet)")
    e.add_argument("--synthetic", required=True, help="the candidate synthetic rows, same columns (CSV or Parquet)")
    e.add_argument("--target", required=True, help="target column (categorical) for TSTR and the attacks")
    e.add_argument("--seed", type=_seed, help=seed_help)
    e.add_argument("--config", type=Path, help="JSON run config: thresholds and attack settings (default: defaults)")
    e.add_argument("--json", action="store_true", help="print every gate and metric as JSON")

    a = command("audit", "re-verify a published release folder: files, signature, data, ledger, Dagster", cmd_audit,
                epilog="exit codes: 0 intact · 1 tampered or incomplete (one line per problem) · 2 bad input")
    a.add_argument("release_dir", help="<release root>/<dataset>/<release_id>, or a release root (every release in it)")
    a.add_argument("--public-key", action="append", metavar="F",
                   help="trusted Ed25519 public key (PEM, from `synth-pipeline key --public`); repeatable. "
                        "Without it the signature is checked against this machine's keys, else only for self-consistency")
    a.add_argument("--ledger", metavar="F", help="the store's ledger.jsonl (default: <release root>/ledger.jsonl)")
    a.add_argument("--dagster-home", metavar="D",
                   help="Dagster instance folder: also check that it materialized this release in the manifest's run")

    k = command("key", "print the release signing key's public half (PEM) for auditors", cmd_key, epilog="")
    k.add_argument("--public", action="store_true", help="print the public key as PEM (the default)")
    k.add_argument("--fingerprint", action="store_true", help="print the key's sha256 fingerprint instead")

    rp = command("reproduce", "re-run a release (tabular or MRI) from its manifest on a temporary Dagster instance "
                 "and compare the new data files' bytes with the files on disk", cmd_reproduce,
                 epilog="exit codes: 0 byte-identical · 1 differs (each difference on stderr) · 2 bad input")
    rp.add_argument("release_dir", help="a published release folder (<root>/<dataset>/<release_id>)")
    rp.add_argument("--input", metavar="FILE", help="the input file (MRI: folder) if it moved since the release; "
                    "its sha256 must match the manifest's (bundled data is found by name)")
    rp.add_argument("--out", help="keep the re-run's release in this new or empty folder "
                    "(default: a temporary folder, removed)")

    m = command("mri-release", "run the gated brain-MRI release (slices with positional conditioning)", cmd_mri_release)
    m.add_argument("--data", help="'default' (the bundled MNI152 pseudo-cohort) or a folder of NIfTI volumes "
                                  "(default: default)")
    m.add_argument("--model", help="dcgan, wgan_gp, r3gan_stacked, r3gan_positional, stylegan3_stacked, "
                                   "stylegan3_positional, r3gan_3d, diffusion, or the copy control (default diffusion)")
    m.add_argument("--out", required=True, help="release root folder (created if missing)")
    m.add_argument("--budget", choices=("tiny", "default", "full"), help="training budget (default: default)")
    m.add_argument("--seed", type=_seed, help=seed_help)
    m.add_argument("--size", type=int, choices=(32, 64, 128), help="slice size in pixels (default 32)")
    m.add_argument("--config", type=Path, help="JSON MRI config (keys of MriConfig); flags override it")
    m.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step log")
    m.add_argument("--keep-intermediates", action="store_true",
                   help="keep this run's intermediates (real rows) in $SYNTH_WORK_DIR/<run_id> after it ends")

    tk = command("turing-kit", "make a blinded visual Turing test from an MRI release", cmd_turing_kit, epilog="")
    tk.add_argument("release", help="a published MRI release folder")
    tk.add_argument("--out", required=True, help="folder for the montage and the blank answers.csv (hand it to the reader)")
    tk.add_argument("--key-dir", help="where the answer key goes (default: <out>_key, never inside --out)")
    tk.add_argument("--n-each", type=int, default=20, help="real and synthetic slices each (default 20)")
    tk.add_argument("--seed", type=_seed, default=0, help="which slices are drawn (default 0)")

    ts = command("turing-score", "score a reader's answers.csv against the answer key", cmd_turing_score, epilog="")
    ts.add_argument("answers", help="the reader's filled-in answers.csv")
    ts.add_argument("key", help="the answer key written by turing-kit")
    ts.add_argument("--json", action="store_true", help="all figures as JSON")

    g = command("generators", "list the generators and MRI models, or one model's parameters", cmd_generators,
                epilog="")
    g.add_argument("--params", metavar="NAME", help="list this generator's parameters (generator_params) and defaults")
    return p


def _redeliver_interrupt(unraisable) -> None:
    """sys.unraisablehook: Dagster turns Ctrl-C / SIGTERM into an exception raised wherever the main
    thread is. Raised inside a finaliser (garbage collection), Python can only print it, and the run
    would go on and publish. A helper thread sends the signal again, so that it lands once the
    finaliser has returned (and again, should that one land in a finaliser too)."""
    import signal
    import threading

    sys.__unraisablehook__(unraisable)
    if type(unraisable.exc_value).__name__ in ("KeyboardInterrupt", "DagsterExecutionInterruptedError"):
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()


def main(argv: list[str] | None = None) -> int:
    if sys.unraisablehook is sys.__unraisablehook__:  # a process of its own, not a test's or a notebook's
        sys.unraisablehook = _redeliver_interrupt
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
