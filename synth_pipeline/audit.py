"""The full audit of a release folder: what `synth-pipeline audit DIR` checks.

1. files: every file the manifest lists, with its sha256, nothing unlisted (release.audit);
2. signature: manifest.sig verifies over manifest.json under the auditor's `--public-key` (any other
   signer is a problem), else under this machine's key of the same fingerprint, else only under the
   key inside manifest.sig, which proves self-consistency and nothing about who signed (a note says so);
3. data: the data agree with the manifest (rows, columns, `synthetic_sha256` recomputed, the release
   id's hash suffix), so rewriting the hashes after changing the data is caught without any key;
4. ledger: the store's ledger lists this manifest's exact bytes, the chain is whole and signed, and
   every release and refusal it lists still exists unchanged;
5. Dagster (when given its records): the instance materialized this release in the run the manifest names.

Each problem is one line naming what is wrong; notes say what could not be checked.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synth_pipeline import ledger
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.kernel import MANIFEST_VERSION, AuditResult, audit, release_id_for
from synth_pipeline.signing import SIGNATURE_FILE, PublicKey, embedded_public_key, local_public_keys, verifies

ASSET_FOR_ARM = {"tabular": "release", "mri": "mri_release"}


def signature_problems(d: Path, manifest: Mapping[str, Any], keys: Sequence[PublicKey]) -> tuple[list[str], list[str]]:
    """(problems, notes) of manifest.sig: under the auditor's keys when given (any other signer is a
    problem), else under this machine's key of the same fingerprint, else only under the key inside
    manifest.sig (self-consistency, which the note says)."""
    sig_path = d / SIGNATURE_FILE
    if not sig_path.is_file():
        return [f"{SIGNATURE_FILE}: missing (the release is not signed)"], []
    try:
        sig = json.loads(sig_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return [f"{SIGNATURE_FILE}: unreadable (not JSON)"], []
    if not isinstance(sig, dict):
        return [f"{SIGNATURE_FILE}: not a JSON object"], []
    data = (d / "manifest.json").read_bytes()
    fp = str(sig.get("key_fingerprint"))
    problems = []
    if (manifest.get("signing") or {}).get("key_fingerprint") != fp:
        problems.append(f"{SIGNATURE_FILE}: signed by key {fp[:16]}…, but the manifest names key "
                        f"{str((manifest.get('signing') or {}).get('key_fingerprint'))[:16]}…")
    trusted = {k.fingerprint: k for k in keys if k.trusted}
    local = {k.fingerprint: k for k in keys if not k.trusted}
    if trusted or fp in local:
        key = trusted.get(fp) or (None if trusted else local[fp])
        if key is None:
            return [*problems, f"{SIGNATURE_FILE}: signed by key {fp[:16]}…, not by the trusted key "
                    f"{', '.join(f[:16] + '…' for f in trusted)} (re-signed with another key?)"], []
        if not verifies(key.key, data, str(sig.get("signature", ""))):
            return [*problems, f"{SIGNATURE_FILE}: does not verify over manifest.json under {key.source} "
                    f"(manifest.json or the signature edited)"], []
        dev = " (a development key)" if (manifest.get("signing") or {}).get("development_key") else ""
        return problems, [f"signature verified with {key.source}{dev}"]
    embedded = embedded_public_key(sig)
    if embedded is None or embedded.fingerprint != fp:
        return [*problems, f"{SIGNATURE_FILE}: its public key is missing, invalid or not the key it names"], []
    if not verifies(embedded.key, data, str(sig.get("signature", ""))):
        return [*problems, f"{SIGNATURE_FILE}: does not verify over manifest.json (manifest.json or the signature edited)"], []
    return problems, [f"signature only self-consistent: checked against the public key inside {SIGNATURE_FILE} "
                      f"({fp[:16]}…), which a forger could have replaced; pass --public-key to know who signed"]


def tabular_problems(d: Path, manifest: Mapping[str, Any]) -> list[str]:
    """synthetic.parquet against the manifest: rows, columns and categories, synthetic_sha256, id suffix."""
    import pandas as pd

    path = d / "synthetic.parquet"
    if not path.is_file():
        return []  # reported by the files check
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - any reader error means the file is not the released table
        return [f"synthetic.parquet: not a readable Parquet table ({type(e).__name__})"]
    problems = []
    if len(df) != manifest.get("n_rows"):
        problems.append(f"synthetic.parquet: {len(df)} rows, the manifest says n_rows {manifest.get('n_rows')}")
    columns = [c.get("name") for c in (manifest.get("schema") or {}).get("columns", [])]
    if list(df.columns) != columns:
        problems.append(f"synthetic.parquet: columns {list(df.columns)} differ from the manifest schema {columns}")
    else:
        for col in (manifest.get("schema") or {}).get("columns", []):
            if col.get("categories"):
                unknown = set(df[col["name"]].dropna().astype(str)) - {str(c) for c in col["categories"]}
                if unknown:
                    problems.append(f"synthetic.parquet: column {col['name']!r} has {len(unknown)} value(s) "
                                    f"outside the manifest schema's categories")
    sha = frame_sha256(df)
    if sha != manifest.get("synthetic_sha256"):
        problems.append(f"synthetic.parquet: data hash {sha[:12]}… differs from the manifest's synthetic_sha256 "
                        f"{str(manifest.get('synthetic_sha256'))[:12]}…")
    tail = release_id_for("", str(manifest.get("generator")), sha)
    if not str(manifest.get("release_id", "")).endswith(tail):
        problems.append(f"release id {manifest.get('release_id')!r} does not end in '{tail}' "
                        f"(generator and hash of the data it holds)")
    return problems


def mri_problems(d: Path, manifest: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Slice count of the NIfTI stack and positions against the manifest, and the id's suffix against
    its synthetic_sha256. The candidate hash itself is not recomputed: positions.csv rounds positions."""
    import nibabel as nib

    from synth_pipeline.imaging.publish import POSITIONS_FILE, SLICES_FILE

    problems = []
    n = manifest.get("n_slices")
    if (d / SLICES_FILE).is_file():
        try:
            shape = nib.load(d / SLICES_FILE).shape
        except Exception as e:  # noqa: BLE001 - any reader error means the file is not the released stack
            problems.append(f"{SLICES_FILE}: not a readable NIfTI volume ({type(e).__name__})")
        else:
            if len(shape) != 3 or shape[2] != n:
                problems.append(f"{SLICES_FILE}: shape {shape}, the manifest says n_slices {n}")
    if (d / POSITIONS_FILE).is_file():
        rows = len((d / POSITIONS_FILE).read_text().strip().splitlines()) - 1
        if rows != n:
            problems.append(f"{POSITIONS_FILE}: {rows} positions, the manifest says n_slices {n}")
    tail = release_id_for("", str(manifest.get("model")), str(manifest.get("synthetic_sha256")))
    if not str(manifest.get("release_id", "")).endswith(tail):
        problems.append(f"release id {manifest.get('release_id')!r} does not end in '{tail}' (model and synthetic_sha256)")
    return problems, ["MRI candidate hash not recomputed (positions.csv rounds positions); slice counts checked"]


def store_problems(root: Path, keys: Sequence[PublicKey]) -> tuple[list[str], list[str], ledger.ChainCheck]:
    """The whole chain of `<root>/ledger.jsonl` and the documents every line lists."""
    check = ledger.verify_chain(root / ledger.LEDGER_FILE, keys)
    return [*check.problems, *ledger.verify_documents(root, check.lines)], list(check.notes), check


def release_line_problems(manifest_bytes: bytes, manifest: Mapping[str, Any], check: ledger.ChainCheck) -> list[str]:
    """This release's latest ledger line records exactly these manifest bytes."""
    import hashlib

    rid, dataset = str(manifest.get("release_id")), str(manifest.get("dataset"))
    line = ledger.latest(check.lines).get(("release", dataset, rid))
    if line is None:
        return [f"ledger: no line for release {dataset}/{rid} (not published by the pipeline, or its line was removed)"]
    if line.record.get("document_sha256") != hashlib.sha256(manifest_bytes).hexdigest():
        return [f"manifest.json: sha256 differs from ledger line {line.number} (manifest changed after publishing)"]
    return []


def ledger_problems(d: Path, manifest_bytes: bytes, manifest: Mapping[str, Any], path: Path, keys: Sequence[PublicKey],
                    ) -> tuple[list[str], list[str]]:
    """This release's line in the ledger, the whole chain, and (in its own store) every listed document."""
    if d.resolve().parent.parent == path.parent.resolve():
        problems, notes, check = store_problems(path.parent, keys)
        mine = f"{manifest.get('dataset')}/{manifest.get('release_id')}/manifest.json:"
        problems = [p for p in problems if not p.startswith(mine)]  # said by release_line_problems
    else:
        check = ledger.verify_chain(path, keys)
        problems, notes = list(check.problems), [*check.notes, f"ledger {path} is not next to this release: chain and "
                                                                 f"this release's line checked, not the store's other documents"]
    return [*problems, *release_line_problems(manifest_bytes, manifest, check)], notes


def dagster_problems(manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[str]:
    """`records`: the release asset's materializations (metadata release_id, path, synthetic_sha256, run_id)."""
    asset = ASSET_FOR_ARM.get(str(manifest.get("arm", "tabular")), "release")
    rid = manifest.get("release_id")
    mine = [r for r in records if r.get("release_id") == rid or Path(str(r.get("path", ""))).name == rid]
    if not mine:
        return [f"dagster: the instance has no {asset} materialization of release {rid}"]
    run_id = (manifest.get("dagster") or {}).get("run_id")
    same_run = [r for r in mine if r.get("run_id") == run_id]
    if not same_run:
        return [f"dagster: release {rid} was materialized by run(s) {', '.join(sorted({str(r.get('run_id')) for r in mine}))}, "
                f"not by run {run_id} that the manifest names"]
    if not any(r.get("synthetic_sha256") == manifest.get("synthetic_sha256") for r in same_run):
        return [f"dagster: run {run_id} recorded another synthetic_sha256 for release {rid}"]
    return []


_FIELD_TYPES = {"release_id": str, "dataset": str, "synthetic_sha256": str, "signing": dict, "dagster": dict,
                "schema": dict, "n_rows": int, "n_slices": int, "generator": str, "model": str, "arm": str}


def shape_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Fields the audit reads must have their documented types (docs/manifest.schema.json), so a
    malformed manifest is one line, not a crash."""
    problems = [f"manifest.json: {name!r} is {type(manifest[name]).__name__}, expected {kind.__name__}"
                for name, kind in _FIELD_TYPES.items() if name in manifest and not isinstance(manifest[name], kind)]
    columns = (manifest.get("schema") or {}).get("columns", []) if isinstance(manifest.get("schema"), dict) else []
    if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
        problems.append("manifest.json: schema.columns is not a list of column objects")
    return problems


def audit_release(release_dir: Path, *, public_keys: Sequence[PublicKey] = (), ledger_path: Path | None = None,
                  materializations: Sequence[Mapping[str, Any]] | None = None,
                  store_check: ledger.ChainCheck | None = None) -> AuditResult:
    """Every check in the module docstring. `public_keys`: trusted keys (else this machine's own);
    `ledger_path`: the store's ledger (default: `<store>/ledger.jsonl` two levels up);
    `materializations`: the Dagster instance's records of the release asset (None: not checked);
    `store_check`: the store's chain, already verified by `audit_store` (then only this release's line)."""
    d = Path(release_dir)
    files = audit(d)
    mpath = d / "manifest.json"
    if not mpath.is_file() or not d.is_dir():
        return files
    manifest_bytes = mpath.read_bytes()
    try:
        manifest = json.loads(manifest_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return files
    if not isinstance(manifest, dict):
        return files
    problems, notes = list(files.problems), []
    if shape := shape_problems(manifest):
        return AuditResult(False, tuple(problems + shape))
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        problems.append(f"manifest.json: manifest_version {manifest.get('manifest_version')!r}, expected {MANIFEST_VERSION}")
    keys = list(public_keys) or local_public_keys()
    p, n = signature_problems(d, manifest, keys)
    problems += p
    notes += n
    if manifest.get("arm", "tabular") == "mri":
        p, n = mri_problems(d, manifest)
        problems += p
        notes += n
    else:
        problems += tabular_problems(d, manifest)
    store_ledger = ledger_path or d.parent.parent / ledger.LEDGER_FILE
    if store_check is not None:
        problems += release_line_problems(manifest_bytes, manifest, store_check)
    elif store_ledger.is_file():
        p, n = ledger_problems(d, manifest_bytes, manifest, store_ledger, keys)
        problems += p
        notes += n
    elif ledger_path is not None:
        problems.append(f"{ledger_path}: ledger not found")
    else:
        notes.append(f"ledger not checked: no {ledger.LEDGER_FILE} in {d.parent.parent} (a copied folder? pass --ledger)")
    if materializations is not None:
        problems += dagster_problems(manifest, materializations)
    else:
        notes.append("Dagster record not checked (pass --dagster-home)")
    return AuditResult(not problems, tuple(problems), tuple(notes))


def audit_store(root: Path, *, public_keys: Sequence[PublicKey] = (),
                materializations: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> AuditResult:
    """A whole release store: the ledger chain and every document it lists once, then every release
    folder in it (problems prefixed with `<dataset>/<release_id>`). `materializations`: by asset name."""
    root = Path(root)
    keys = list(public_keys) or local_public_keys()
    if not (root / ledger.LEDGER_FILE).is_file():
        return AuditResult(False, (f"{root / ledger.LEDGER_FILE}: missing (not a release store?)",))
    problems, notes, check = store_problems(root, keys)
    for manifest in sorted(root.glob("*/*/manifest.json")):
        d = manifest.parent
        records = None
        if materializations is not None:
            try:
                arm = json.loads(manifest.read_text()).get("arm", "tabular")
            except (ValueError, AttributeError):
                arm = "tabular"
            records = materializations.get(ASSET_FOR_ARM.get(str(arm), "release"), [])
        result = audit_release(d, public_keys=keys, materializations=records, store_check=check)
        problems += [f"{d.relative_to(root)}: {p}" for p in result.problems]
        notes += [n for n in result.notes if n not in notes]
    return AuditResult(not problems, tuple(problems), tuple(notes))
