"""Visual Turing test kit: blinding, scoring known answer files, and clear errors for bad files."""

import csv
import json

import numpy as np
import pytest

from synth_pipeline.errors import BadInput
from synth_pipeline.imaging.turing import ANSWERS_FILE, KEY_FILE, MONTAGE_FILE, make_kit, score

N_EACH = 40


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (60, 1, 16, 16)).astype(np.float32)
    fake = rng.uniform(-1, 1, (50, 1, 16, 16)).astype(np.float32)
    root = tmp_path_factory.mktemp("turing")
    return make_kit(real, fake, root / "reader", n_each=N_EACH, seed=3), root


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tile", "answer"])
        w.writerows(rows)
    return path


def test_kit_is_blinded(kit):
    k, root = kit
    reader = root / "reader"
    assert sorted(p.name for p in reader.iterdir()) == sorted([MONTAGE_FILE, ANSWERS_FILE])
    assert k.key.name == KEY_FILE and reader not in k.key.parents
    assert k.montage.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    key = json.loads(k.key.read_text())["tiles"]
    assert len(key) == 2 * N_EACH and sorted(set(key.values())) == ["real", "synthetic"]
    assert sum(v == "synthetic" for v in key.values()) == N_EACH
    with open(k.answers_template) as f:
        rows = list(csv.DictReader(f))
    assert [r["tile"] for r in rows] == [str(i) for i in range(1, 2 * N_EACH + 1)] and not any(r["answer"] for r in rows)


def test_same_seed_same_kit(kit, tmp_path):
    k, _ = kit
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (60, 1, 16, 16)).astype(np.float32)
    fake = rng.uniform(-1, 1, (50, 1, 16, 16)).astype(np.float32)
    again = make_kit(real, fake, tmp_path / "r", n_each=N_EACH, seed=3)
    assert json.loads(again.key.read_text()) == json.loads(k.key.read_text())
    with pytest.raises(BadInput, match="outside"):
        make_kit(real, fake, tmp_path / "r2", n_each=5, seed=0, key_dir=tmp_path / "r2" / "key")


def test_perfect_and_random_readers(kit, tmp_path):
    k, _ = kit
    key = json.loads(k.key.read_text())["tiles"]
    perfect = score(_write(tmp_path / "p.csv", list(key.items())), k.key)
    assert perfect.accuracy == 1.0 and perfect.sensitivity == 1.0 and perfect.specificity == 1.0
    assert perfect.n == 2 * N_EACH and perfect.p_value < 1e-6 and "better than chance" in perfect.verdict
    inverted = score(_write(tmp_path / "i.csv", [(t, "real" if v == "synthetic" else "synthetic") for t, v in key.items()]), k.key)
    assert inverted.accuracy == 0.0 and "mislabelled" in inverted.verdict
    rng = np.random.default_rng(1)
    accs = [score(_write(tmp_path / f"r{i}.csv", [(t, rng.choice(["real", "synthetic"])) for t in key]), k.key).accuracy
            for i in range(20)]
    assert 0.4 < np.mean(accs) < 0.6
    partial = score(_write(tmp_path / "part.csv", [(t, v if int(t) <= 4 else "") for t, v in key.items()]), k.key)
    assert partial.n == 4 and partial.unanswered == 2 * N_EACH - 4 and partial.accuracy == 1.0
    assert partial.p_value == pytest.approx(0.125) and "could not tell" in partial.verdict


@pytest.mark.parametrize("rows, match", [
    ([("1", "maybe")], "must be 'real' or 'synthetic'"),
    ([("999", "real")], "not in the answer key"),
    ([("1", "real"), ("1", "synthetic")], "answered twice"),
    ([("1", "")], "no tile has an answer"),
])
def test_bad_answers_files(kit, tmp_path, rows, match):
    k, _ = kit
    path = _write(tmp_path / "a.csv", rows)
    with pytest.raises(BadInput, match=match) as e:
        score(path, k.key)
    assert "a.csv" in str(e.value) and "\n" not in str(e.value)


def test_answers_without_header_and_bad_key(kit, tmp_path):
    k, _ = kit
    (tmp_path / "h.csv").write_text("1,real\n2,synthetic\n")
    with pytest.raises(BadInput, match="h.csv"):
        score(tmp_path / "h.csv", k.key)
    (tmp_path / "key.json").write_text("{not json")
    with pytest.raises(BadInput, match="key.json"):
        score(tmp_path / "h.csv", tmp_path / "key.json")
