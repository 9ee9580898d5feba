"""Compare a release folder on disk with the bytes a run would write.

Used where a release id already exists (a run must not call an existing folder "published" unless it
holds exactly what this run would have written) and by `reproduce` (a re-run's files against the
files on disk, never against the manifest's recorded hashes).
"""

import json
from collections.abc import Mapping
from pathlib import Path

from synth_pipeline.hashing import file_sha256
from synth_pipeline.signing import SIGNATURE_FILE

# They carry the creation time, the Dagster run id and paths (the signature signs the manifest), so they
# differ between identical runs; their content is compared field by field (reproduce), not byte for byte.
VARYING_FILES = ("manifest.json", SIGNATURE_FILE, "report.html")


def content_differences(folder: Path, files: Mapping[str, bytes]) -> list[str]:
    """Data files (all but VARYING_FILES) of `folder` whose bytes are not `files`', or that only one side has."""
    folder = Path(folder)
    on_disk = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
    names = sorted((on_disk | set(files)) - set(VARYING_FILES))
    diffs = []
    for name in names:
        if name not in files:
            diffs.append(f"{name}: in {folder} but not written by the run")
        elif name not in on_disk:
            diffs.append(f"{name}: missing from {folder}")
        elif (folder / name).read_bytes() != files[name]:
            diffs.append(f"{name}: bytes on disk differ from the run's")
    return diffs


def existing_release_problems(folder: Path, files: Mapping[str, bytes], synthetic_sha256: str) -> list[str]:
    """Why an existing folder with this release id is NOT the release this run would publish: other
    data bytes, or a manifest that does not vouch for them (unreadable, other hashes or candidate)."""
    problems = content_differences(folder, files)
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
        recorded = manifest["files"]
        if manifest.get("synthetic_sha256") != synthetic_sha256:
            problems.append("manifest.json: synthetic_sha256 is not this candidate's")
        problems += [f"manifest.json: recorded sha256 of {name} is not the file's"
                     for name in sorted(set(files) - set(VARYING_FILES))
                     if (Path(folder) / name).is_file() and recorded.get(name) != file_sha256(Path(folder) / name)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        problems.append("manifest.json: missing or unreadable")
    return problems
