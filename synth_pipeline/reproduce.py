"""Re-run a release from its manifest and say exactly what differs: input bytes, package versions,
code version, synthetic bytes, metrics. Auditors use it months later to trust (or question) a release."""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_pipeline.config import RunConfig
from synth_pipeline.data.sql import sql_input_differences
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256
from synth_pipeline.release import code_version, package_versions


@dataclass(frozen=True)
class Reproduction:
    """`identical`: same input bytes, byte-identical synthetic data and the same metrics.
    `differences` says what differs; `notes` lists version changes that did not change the result."""

    identical: bool
    differences: tuple[str, ...]
    notes: tuple[str, ...]
    new_release: Path | None


def _metric_values(manifest: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for gate in manifest.get("gates", []):
        for m in gate.get("metrics", []):
            out[f"{gate['gate']}:{m['name']}"] = (m.get("value"), m.get("ci"), m.get("passed"))
    for report, body in manifest.get("reports", {}).items():
        for m in body.get("metrics", []):
            out[f"{report}:{m['name']}"] = (m.get("value"), m.get("ci"))
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, with floats compared to 1e-9 relative: BLAS may change the last bit between runs."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def input_differences(manifest: dict[str, Any]) -> list[str]:
    """The input file is missing or its bytes are not those the release was made from; for a SQL
    source, the query cannot run now or its rows are not those the release was made from."""
    diffs = []
    inp = manifest["input"]
    if "sql" in inp:
        return sql_input_differences(inp)
    path = Path(inp["path"])
    if not path.is_file():
        diffs.append(f"input {path}: missing")
    elif (sha := file_sha256(path)) != inp["sha256"]:
        diffs.append(f"input {path}: sha256 {sha[:12]}… differs from the release's {inp['sha256'][:12]}…")
    return diffs


def version_differences(manifest: dict[str, Any]) -> list[str]:
    """Package and code versions that differ from those the release was made with."""
    now = package_versions(list(manifest.get("packages", {})))
    diffs = [f"package {name}: {was} then, {now.get(name)} now"
              for name, was in sorted(manifest.get("packages", {}).items()) if now.get(name) != was]
    then_code, now_code = manifest.get("code_version", {}), code_version()
    if then_code.get("git_commit") and then_code.get("git_commit") != now_code.get("git_commit"):
        diffs.append(f"code: commit {then_code['git_commit'][:12]} then, {str(now_code.get('git_commit'))[:12]} now")
    return diffs


def reproduce(release_dir: Path, out: Path, run: Callable[[RunConfig, Path, dict[str, str]], Path | None]) -> Reproduction:
    """`run(config, out, tags)` runs the pipeline and returns the published folder (or None)."""
    mpath = Path(release_dir) / "manifest.json"
    if not mpath.is_file():
        raise BadInput(f"{mpath}: not found; not a release folder")
    manifest = json.loads(mpath.read_text())
    diffs, notes = input_differences(manifest), version_differences(manifest)
    cfg = RunConfig.from_dict(manifest["config"])
    day = manifest["release_id"].split("-", 1)[0]
    new = run(cfg, Path(out), {"synth/date": day})
    if new is None:
        return Reproduction(False, (*diffs, *notes, "the re-run did not publish (refused or failed)"), (), None)
    new_manifest = json.loads((new / "manifest.json").read_text())
    if new_manifest["files"]["synthetic.parquet"] != manifest["files"]["synthetic.parquet"]:
        diffs.append("synthetic.parquet: bytes differ from the release")
    before, after = _metric_values(manifest), _metric_values(new_manifest)
    diffs += [f"metric {k}: {before.get(k)} then, {after.get(k)} now"
              for k in sorted(set(before) | set(after)) if not _same(before.get(k), after.get(k))]
    if diffs:  # versions are a likely cause: report them with the differences
        return Reproduction(False, (*diffs, *notes), (), new)
    return Reproduction(True, (), tuple(notes), new)
