"""Tamper evidence: a matrix of forgeries on a real release store, each caught by `audit` with a line
naming it, and an intact release that audits as intact on another machine with only the folder and
the public key. Manifests and refusal records are validated against their JSON Schemas in docs/.

One real release (GBSG2, Gaussian copula, through the Dagster graph) is made once for the module;
a second release of the same store is published from its real synthetic rows, and one refusal is
recorded, so the ledger has three lines. Each forgery works on its own copy of the store.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import jsonschema
import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from synth_pipeline import ledger
from synth_pipeline.audit import audit_release
from synth_pipeline.cli import _release_materializations, run_release
from synth_pipeline.config import RunConfig
from synth_pipeline.data import load_dataset
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256, frame_sha256, parquet_bytes
from synth_pipeline.kernel import MANIFEST_VERSION, publish, record_refusal, release_id_for, utc_now
from synth_pipeline.signing import (
    SigningKey, fingerprint, load_public_key, load_signing_key, public_pem, signature_document,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLI = [sys.executable, "-m", "synth_pipeline.cli"]


@dataclass(frozen=True)
class Store:
    root: Path
    first: Path  # the real release (its Dagster run is in `home`)
    second: Path  # published from the first's rows through publish()
    refusal: Path
    home: Path
    public_key: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    base = tmp_path_factory.mktemp("audit")
    home = base / "dagster"
    home.mkdir()
    root = base / "releases"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        outcome = run_release(RunConfig.from_dict({"data": "gbsg2", "generator": "gaussian_copula"}), root,
                              instance=instance)
    assert outcome.status == "published", outcome.message
    first = Path(outcome.path)
    manifest = json.loads((first / "manifest.json").read_text())
    rows = pd.read_parquet(first / "synthetic.parquet").sample(200, random_state=1).reset_index(drop=True)
    sha = frame_sha256(rows)
    body = {k: v for k, v in manifest.items() if k not in ("release_id", "files", "signing", "manifest_version")}
    second = publish(root, "gbsg2", release_id_for("20261201", "gaussian_copula", sha),
                     {"synthetic.parquet": parquet_bytes(rows), "report.html": (first / "report.html").read_bytes()},
                     {**body, "n_rows": len(rows), "synthetic_sha256": sha})
    refusal = record_refusal(root, "gbsg2", "run-refused-1",
                             {"gate": "dcr_gate", "passed": False, "reason": "memorisation 0.31 > 0.10", "at": utc_now()})
    public_key = base / "key.pub"
    public_key.write_text(public_pem(load_signing_key().private.public_key()))
    return Store(root, first, second, refusal, home, public_key)


def _copy(store: Store, tmp_path: Path) -> Store:
    root = tmp_path / "releases"
    shutil.copytree(store.root, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    rel = lambda p: root / p.relative_to(store.root)  # noqa: E731
    return Store(root, rel(store.first), rel(store.second), rel(store.refusal), store.home, store.public_key)


def _audit(release: Path, store: Store, **kw):
    return audit_release(release, public_keys=[load_public_key(store.public_key)], **kw)


def _rewrite_manifest(release: Path, **updates) -> None:
    """What a forger with write access does: re-hash every listed file and apply `updates`."""
    path = release / "manifest.json"
    m = json.loads(path.read_text())
    m["files"] = {name: file_sha256(release / name) for name in m["files"]}
    m.update(updates)
    path.write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def _has(problems, *needles) -> bool:
    return any(all(n in p for n in needles) for p in problems)


def _ledger_lines(root: Path) -> list[str]:
    return (root / ledger.LEDGER_FILE).read_text().splitlines()


def _foreign_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(private, fingerprint(private.public_key()), False, Path("forger.pem"))


def test_intact_release_and_store_audit_clean_with_every_check(store):
    records = _release_materializations(str(store.home), "release")
    result = _audit(store.first, store, materializations=records)
    assert result.ok, result.problems
    assert any("signature verified with" in n for n in result.notes)
    assert not any("ledger not checked" in n or "Dagster record not checked" in n for n in result.notes)
    assert [json.loads(line)["kind"] for line in _ledger_lines(store.root)] == ["release", "release", "refusal"]
    second = _audit(store.second, store)
    assert second.ok, second.problems


def test_dagster_record_must_name_this_release_and_its_run(store):
    records = _release_materializations(str(store.home), "release")
    assert _has(_audit(store.second, store, materializations=records).problems, "dagster:", "no release materialization")
    other_run = [{**r, "run_id": "someone-else"} for r in records]
    assert _has(_audit(store.first, store, materializations=other_run).problems, "dagster:", "not by run")


def test_intact_release_audits_on_another_machine_with_only_the_folder_and_public_key(store, tmp_path):
    machine = tmp_path / "elsewhere"
    machine.mkdir()
    shutil.copytree(store.first, machine / store.first.name)
    shutil.copy(store.public_key, machine / "key.pub")
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SYNTH_SIGNING_KEY")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-keys-here")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    run = lambda *a: subprocess.run([*CLI, "audit", str(machine / store.first.name), *a], capture_output=True,  # noqa: E731
                                    text=True, cwd=machine, env=env, timeout=300)
    trusted = run("--public-key", str(machine / "key.pub"))
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip().endswith(": intact") and "signature verified with" in trusted.stdout
    assert "ledger not checked" in trusted.stdout  # said, not hidden
    alone = run()
    assert alone.returncode == 0, alone.stderr
    assert "only self-consistent" in alone.stdout
    assert not (tmp_path / "no-keys-here").exists(), "audit must never create a signing key"


def test_truncated_data_with_rehashed_manifest(store, tmp_path):
    s = _copy(store, tmp_path)
    df = pd.read_parquet(s.first / "synthetic.parquet")
    (s.first / "synthetic.parquet").write_bytes(parquet_bytes(df.head(len(df) - 100)))
    _rewrite_manifest(s.first)
    problems = _audit(s.first, s).problems
    assert _has(problems, "synthetic.parquet:", f"{len(df) - 100} rows", f"n_rows {len(df)}")
    assert _has(problems, "synthetic.parquet: data hash", "differs from the manifest's synthetic_sha256")
    assert _has(problems, "manifest.sig: does not verify")
    assert _has(problems, "manifest.json: sha256 differs from ledger line 1")


def test_replaced_file_with_rehashed_manifest(store, tmp_path):
    s = _copy(store, tmp_path)
    (s.first / "report.html").write_text("<html>all gates passed, trust me</html>")
    _rewrite_manifest(s.first)
    problems = _audit(s.first, s).problems
    assert not _has(problems, "report.html")  # the hashes agree: only the signature and the ledger can tell
    assert _has(problems, "manifest.sig: does not verify over manifest.json")
    assert _has(problems, "manifest.json: sha256 differs from ledger line 1")


def test_resigned_with_another_key(store, tmp_path):
    s = _copy(store, tmp_path)
    forger = _foreign_key()
    (s.first / "report.html").write_text("<html>forged</html>")
    _rewrite_manifest(s.first, signing={**json.loads((s.first / "manifest.json").read_text())["signing"],
                                        "key_fingerprint": forger.fingerprint, "development_key": False})
    (s.first / "manifest.sig").write_bytes(signature_document(forger, (s.first / "manifest.json").read_bytes()))
    problems = _audit(s.first, s).problems
    assert _has(problems, "manifest.sig: signed by key", forger.fingerprint[:16], "not by the trusted key")
    without_key = audit_release(s.first)  # no key given, the forger's is not on this machine: the ledger tells
    assert any("only self-consistent" in n for n in without_key.notes)
    assert _has(without_key.problems, "manifest.json: sha256 differs from ledger line 1")


def test_ledger_rewritten_with_another_key(store, tmp_path):
    s = _copy(store, tmp_path)
    (s.root / ledger.LEDGER_FILE).unlink()
    forger = _foreign_key()
    for line in [json.loads(x) for x in _ledger_lines(store.root)]:
        ledger.append(s.root, kind=line["kind"], dataset=line["dataset"], entry_id=line["id"], verdict=line["verdict"],
                      document=line["document"], document_sha256=line["document_sha256"], at=line["at"], key=forger)
    problems = _audit(s.first, s).problems
    assert [p for p in problems if "not a given public key" in p] == [
        f"ledger line {n}: signed by key {forger.fingerprint[:16]}…, not a given public key" for n in (1, 2, 3)]


def test_deleted_release(store, tmp_path):
    s = _copy(store, tmp_path)
    shutil.rmtree(s.second)
    problems = _audit(s.first, s).problems
    assert _has(problems, "ledger line 2: release", s.second.name, "missing (deleted)")


def test_deleted_refusal_record_and_its_ledger_line(store, tmp_path):
    s = _copy(store, tmp_path)
    s.refusal.unlink()
    assert _has(_audit(s.first, s).problems, "ledger line 3: refusal record", "missing (deleted)")
    s = _copy(store, tmp_path / "b")
    (s.root / ledger.LEDGER_FILE).write_text("\n".join(_ledger_lines(s.root)[:2]) + "\n")
    assert _has(_audit(s.first, s).problems, "refusal record", "run-refused-1.json: not in the ledger")


def test_edited_refusal_record(store, tmp_path):
    s = _copy(store, tmp_path)
    doc = json.loads(s.refusal.read_text())
    doc["entries"][0]["reason"] = "nothing to see"
    s.refusal.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    assert _has(_audit(s.first, s).problems, "refusals/run-refused-1.json: sha256 differs from ledger line 3")


def test_edited_ledger_line(store, tmp_path):
    s = _copy(store, tmp_path)
    lines = _ledger_lines(s.root)
    edited = json.loads(lines[2])
    edited["verdict"] = "published"
    lines[2] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    (s.root / ledger.LEDGER_FILE).write_text("\n".join(lines) + "\n")
    assert _has(_audit(s.first, s).problems, "ledger line 3: signature does not match the line (edited)")
    # the same edit with the next line's hash fixed up still breaks the chain behind it
    lines = _ledger_lines(store.root)
    first = json.loads(lines[0])
    first["at"] = "2020-01-01T00:00:00+00:00"
    lines[0] = json.dumps(first, sort_keys=True, separators=(",", ":"))
    s2 = _copy(store, tmp_path / "b")
    (s2.root / ledger.LEDGER_FILE).write_text("\n".join(lines) + "\n")
    problems = _audit(s2.first, s2).problems
    assert _has(problems, "ledger line 1: signature does not match")
    assert _has(problems, "ledger line 2: does not chain to the line before it")


def test_reordered_ledger(store, tmp_path):
    s = _copy(store, tmp_path)
    a, b, c = _ledger_lines(s.root)
    (s.root / ledger.LEDGER_FILE).write_text("\n".join([a, c, b]) + "\n")
    problems = _audit(s.first, s).problems
    assert _has(problems, "ledger line 2: does not chain")
    assert _has(problems, "ledger line 2: sequence number 3, expected 2")


def test_manifests_swapped_between_two_releases(store, tmp_path):
    s = _copy(store, tmp_path)
    for name in ("manifest.json", "manifest.sig"):
        one, two = (s.first / name).read_bytes(), (s.second / name).read_bytes()
        (s.first / name).write_bytes(two)
        (s.second / name).write_bytes(one)
    for rel in (s.first, s.second):
        problems = _audit(rel, s).problems
        assert _has(problems, "manifest release_id", "does not match folder", rel.name)
        assert _has(problems, "synthetic.parquet: sha256 differs from manifest")


def test_data_swapped_for_training_rows_with_hashes_rewritten(store, tmp_path):
    s = _copy(store, tmp_path)
    manifest = json.loads((s.first / "manifest.json").read_text())
    columns = [c["name"] for c in manifest["schema"]["columns"]]
    real = load_dataset("gbsg2").raw[columns].head(manifest["n_rows"]).reset_index(drop=True)
    (s.first / "synthetic.parquet").write_bytes(parquet_bytes(real))
    _rewrite_manifest(s.first, n_rows=len(real), synthetic_sha256=frame_sha256(real))
    problems = _audit(s.first, s).problems
    assert _has(problems, f"release id '{s.first.name}' does not end in '-gaussian_copula-{frame_sha256(real)[:12]}'")
    assert _has(problems, "manifest.sig: does not verify")
    assert _has(problems, "manifest.json: sha256 differs from ledger line 1")


def test_release_published_outside_the_pipeline(store, tmp_path):
    s = _copy(store, tmp_path)
    forged = s.root / "gbsg2" / "20261203-gaussian_copula-000000000000"
    shutil.copytree(s.second, forged)
    problems = _audit(s.first, s).problems
    assert _has(problems, f"release gbsg2/{forged.name}: not in the ledger")


def test_cli_names_each_problem_on_one_line_and_exits_1(store, tmp_path):
    s = _copy(store, tmp_path)
    shutil.rmtree(s.second)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    res = subprocess.run([*CLI, "audit", str(s.first), "--public-key", str(store.public_key),
                          "--dagster-home", str(store.home)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = [line for line in res.stderr.strip().splitlines() if ": note: " not in line]
    assert lines == [f"{s.first}: ledger line 2: release gbsg2/{s.second.name} is listed but "
                     f"gbsg2/{s.second.name}/manifest.json is missing (deleted)"]
    bad_key = subprocess.run([*CLI, "audit", str(s.first), "--public-key", str(s.first / "report.html")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert bad_key.returncode == 2 and "--public-key" in bad_key.stderr and "Traceback" not in bad_key.stderr


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((DOCS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_manifests_and_refusal_records_match_their_versioned_schemas(store):
    manifest_schema, refusal_schema = _validator("manifest.schema.json"), _validator("refusal.schema.json")
    for rel in (store.first, store.second):
        manifest = json.loads((rel / "manifest.json").read_text())
        assert manifest["manifest_version"] == MANIFEST_VERSION
        manifest_schema.validate(manifest)
    refusal = json.loads(store.refusal.read_text())
    assert refusal["manifest_version"] == MANIFEST_VERSION
    refusal_schema.validate(refusal)
    assert manifest_schema.schema["properties"]["manifest_version"]["const"] == MANIFEST_VERSION
    manifest = json.loads((store.first / "manifest.json").read_text())
    for broken in ({k: v for k, v in manifest.items() if k != "manifest_version"},
                   {**manifest, "synthetic_sha256": "not-a-hash"}, {**manifest, "verdict": "refused"},
                   {k: v for k, v in manifest.items() if k != "n_rows"}):
        assert not manifest_schema.is_valid(broken)
    assert not refusal_schema.is_valid({**refusal, "published": True})


def test_mri_release_is_signed_ledgered_and_its_slice_count_checked(tmp_path, store):
    from synth_pipeline.imaging import publish as pub
    from synth_pipeline.imaging.pipeline import synthetic_set

    rng = np.random.default_rng(0)
    fake = synthetic_set(rng.uniform(-1, 1, (8, 1, 16, 16)), np.linspace(0, 1, 8))
    sha = pub.candidate_sha256(fake)
    files = {pub.SLICES_FILE: pub.nifti_bytes(fake.images[:, 0], (1.0, 1.0, 1.0)),
             pub.POSITIONS_FILE: pub.positions_csv(fake.position), pub.MONTAGE_FILE: pub.montage_by_position(fake),
             "report.html": b"<html>mri</html>"}
    manifest = {"arm": "mri", "verdict": "published", "dataset": "mri-test", "created_at": utc_now(), "n_slices": 8,
                "synthetic_sha256": sha, "model": "dcgan", "input": {}, "config": {}, "seed": 0, "thresholds": {},
                "gates": [{"gate": "mri_memorisation_gate", "passed": True}], "metrics": [],
                "code_version": {"package": "0", "git_commit": None, "git_dirty": None}, "packages": {},
                "dagster": {"run_id": "r1"}}
    rel = publish(tmp_path, "mri-test", f"20261202-dcgan-{sha[:12]}", files, manifest)
    result = audit_release(rel, public_keys=[load_public_key(store.public_key)])
    assert result.ok, result.problems
    _validator("manifest.schema.json").validate(json.loads((rel / "manifest.json").read_text()))
    for p in rel.iterdir():
        p.chmod(0o644)
    (rel / pub.POSITIONS_FILE).write_bytes(pub.positions_csv(fake.position[:7]))
    _rewrite_manifest(rel)
    problems = audit_release(rel, public_keys=[load_public_key(store.public_key)]).problems
    assert _has(problems, "positions.csv: 7 positions, the manifest says n_slices 8")
    assert _has(problems, "manifest.sig: does not verify")


def test_development_key_is_private_and_reused(store):
    key = load_signing_key()
    assert key.development and oct(key.source.stat().st_mode)[-3:] == "600"
    assert load_signing_key().fingerprint == key.fingerprint
    assert json.loads((store.first / "manifest.json").read_text())["signing"]["development_key"] is True


def test_configured_key_signs_and_a_bad_key_file_is_one_clear_error(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization

    private = Ed25519PrivateKey.generate()
    pem = tmp_path / "release-key.pem"
    pem.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    monkeypatch.setenv("SYNTH_SIGNING_KEY", str(pem))
    rel = publish(tmp_path / "out", "flchain", "r1", {"synthetic.parquet": b"x", "report.html": b"y"}, {})
    signing = json.loads((rel / "manifest.json").read_text())["signing"]
    assert signing == {"algorithm": "Ed25519", "key_fingerprint": fingerprint(private.public_key()),
                       "development_key": False, "signature_file": "manifest.sig"}
    monkeypatch.setenv("SYNTH_SIGNING_KEY", pem.read_text())  # the PEM itself, e.g. from a Kubernetes secret
    assert load_signing_key().fingerprint == fingerprint(private.public_key())
    monkeypatch.setenv("SYNTH_SIGNING_KEY", str(pem))
    pem.write_text("not a key")
    with pytest.raises(BadInput, match="SYNTH_SIGNING_KEY .*release-key.pem: not an unencrypted PEM private key"):
        publish(tmp_path / "out", "flchain", "r2", {}, {})
    assert not (tmp_path / "out" / "flchain" / "r2").exists()


def test_a_copied_ledger_checks_this_release_on_another_machine(store, tmp_path):
    machine = tmp_path / "elsewhere"
    shutil.copytree(store.first, machine / store.first.name)
    shutil.copy(store.root / ledger.LEDGER_FILE, machine / "ledger-copy.jsonl")
    result = _audit(machine / store.first.name, store, ledger_path=machine / "ledger-copy.jsonl")
    assert result.ok, result.problems
    assert any("not next to this release" in n for n in result.notes)
    lines = _ledger_lines(store.root)
    (machine / "ledger-copy.jsonl").write_text("\n".join(lines[1:]) + "\n")
    problems = _audit(machine / store.first.name, store, ledger_path=machine / "ledger-copy.jsonl").problems
    assert _has(problems, "ledger: no line for release", store.first.name)
    assert _has(problems, "ledger line 1: does not chain")


@pytest.mark.parametrize("mangle", [
    lambda m: [m],
    lambda m: {**m, "files": ["synthetic.parquet"]},
    lambda m: {**m, "schema": "flchain"},
    lambda m: {**m, "n_rows": "480"},
    lambda m: {**m, "signing": None},
])
def test_malformed_manifest_is_one_line_not_a_crash(store, tmp_path, mangle):
    s = _copy(store, tmp_path)
    m = json.loads((s.first / "manifest.json").read_text())
    (s.first / "manifest.json").write_text(json.dumps(mangle(m)))
    result = _audit(s.first, s)
    assert not result.ok and any(p.startswith("manifest.json:") or "manifest.json" in p for p in result.problems)


def test_a_whole_store_audits_every_release_once(store, tmp_path):
    from synth_pipeline.audit import audit_store

    records = {"release": _release_materializations(str(store.home), "release"), "mri_release": []}
    keys = [load_public_key(store.public_key)]
    result = audit_store(store.root, public_keys=keys, materializations=records)
    assert result.problems == (f"gbsg2/{store.second.name}: dagster: the instance has no release materialization "
                               f"of release {store.second.name}",)  # published through publish(), not a run
    s = _copy(store, tmp_path)
    (s.second / "report.html").write_text("<html>changed</html>")
    problems = audit_store(s.root, public_keys=keys).problems
    assert problems == (f"gbsg2/{s.second.name}: report.html: sha256 differs from manifest (tampered)",)


def test_concurrent_appends_keep_one_unbroken_chain(tmp_path):
    script = ("import sys; from pathlib import Path; from synth_pipeline import ledger; "
              "from synth_pipeline.signing import load_signing_key; k = load_signing_key(); "
              "[ledger.append(Path(sys.argv[1]), kind='refusal', dataset='d', entry_id=f'{sys.argv[2]}-{i}', "
              "verdict='refused', document='d/refusals/x.json', document_sha256='0' * 64, at='t', key=k) for i in range(10)]")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(n)], env=env) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    check = ledger.verify_chain(tmp_path / ledger.LEDGER_FILE, [_own_public_key()])
    assert check.problems == () and len(check.lines) == 40
    assert len({line.record["id"] for line in check.lines}) == 40


def _own_public_key():
    from synth_pipeline.signing import PublicKey

    pub = load_signing_key().private.public_key()
    return PublicKey(pub, fingerprint(pub), "test", True)
