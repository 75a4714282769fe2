"""The SchNet Δ-model of `examples/delta_learning/model.py`: invariances, batching, save/load,
training and cross-validation hygiene. Runs on the G2 stand-in (`standin.py`), no data files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.timeout(120)
FOLDER = Path(__file__).resolve().parents[2] / "examples" / "delta_learning"


def _import(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"delta_learning_{name}", FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


M = _import("model")
standin = _import("standin")


@pytest.fixture(scope="module")
def g2() -> tuple[list, np.ndarray, np.ndarray]:
    atoms = standin.molecules()
    reference = standin.atomization_energies(atoms)
    cheap = standin.cheap_elements(atoms, reference)
    return atoms, cheap, reference


@pytest.fixture(scope="module")
def model() -> M.SchNet:
    """An untrained SchNet with non-trivial prior buffers, so every term matters."""
    torch.manual_seed(3)
    net = M.SchNet(M.Config(n_features=32, n_interactions=2, n_rbf=16))
    with torch.no_grad():
        net.element_ref.uniform_(-5.0, 5.0)
        net.cheap_coef.fill_(0.01)
        net.bias.fill_(1.5)
        net.scale.fill_(20.0)
    return net.eval()


def _by_name(atoms: list, *names: str) -> list:
    table = {a.info["name"]: a for a in atoms}
    return [table[n].copy() for n in names]


def test_batch_shapes_and_pairs(g2) -> None:
    atoms, _, _ = g2
    mols = _by_name(atoms, "CH4", "H2O", "C6H6")
    batch = M.make_batch(mols, [1.0, 2.0, 3.0], cutoff=4.0)
    n_atoms = sum(len(a) for a in mols)
    assert batch.numbers.shape == (n_atoms,)
    assert batch.positions.shape == (n_atoms, 3)
    assert batch.positions.dtype == torch.float32
    assert batch.molecule.tolist() == [0] * 5 + [1] * 3 + [2] * 12
    # Pairs never cross molecules and never pair an atom with itself.
    assert torch.equal(batch.molecule[batch.pair_i], batch.molecule[batch.pair_j])
    assert not torch.any(batch.pair_i == batch.pair_j)
    assert batch.counts[2, 6] == 6 and batch.counts[2, 1] == 6 and batch.counts[0].sum() == 5
    # Benzene's meta and para H···H (4.3, 5.0 Å) lie beyond 4 Å; all of methane's pairs are in.
    assert int((batch.molecule[batch.pair_i] == 0).sum()) == 5 * 4
    assert int((batch.molecule[batch.pair_i] == 2).sum()) < 12 * 11


def test_prediction_per_molecule_and_batching(model, g2) -> None:
    atoms, cheap, _ = g2
    out = M.predict_delta(model, atoms[:20], cheap[:20])
    assert len(out) == 20 and all(isinstance(v, float) for v in out)
    alone = [
        M.predict_delta(model, [a], [c])[0] for a, c in zip(atoms[:20], cheap[:20], strict=True)
    ]
    np.testing.assert_allclose(out, alone, rtol=1e-5, atol=1e-3)
    corrected = M.predict(model, atoms[:20], cheap[:20])
    np.testing.assert_allclose(np.asarray(corrected) - cheap[:20], out, atol=1e-3)
    # Dict inputs (what a servable receives over JSON) give the same answer as ase.Atoms.
    dicts = [{"numbers": a.numbers.tolist(), "positions": a.positions.tolist()} for a in atoms[:20]]
    np.testing.assert_allclose(M.predict_delta(model, dicts, cheap[:20]), out, atol=1e-4)


def test_permutation_invariance(model, g2) -> None:
    atoms, _, _ = g2
    mols = _by_name(atoms, "C6H6", "CH3CH2OH", "SiH4")
    rng = np.random.default_rng(0)
    shuffled = [a[rng.permutation(len(a))] for a in mols]
    assert any((s.numbers != m.numbers).any() for s, m in zip(shuffled, mols, strict=True))
    before = M.predict_delta(model, mols, [100.0, 200.0, 300.0])
    after = M.predict_delta(model, shuffled, [100.0, 200.0, 300.0])
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-3)


def test_rotation_translation_invariance_and_geometry_matters(model, g2) -> None:
    atoms, _, _ = g2
    mols = _by_name(atoms, "CH3CH2OH", "C6H6", "NH3")
    cheap = [10.0, 20.0, 30.0]
    before = M.predict_delta(model, mols, cheap)
    rng = np.random.default_rng(1)
    moved = []
    for a in mols:
        b = a.copy()
        b.rotate(float(rng.uniform(0, 360)), rng.normal(size=3), center="COM")
        b.translate(rng.normal(scale=10.0, size=3))
        moved.append(b)
    assert not np.allclose(moved[0].positions, mols[0].positions)
    np.testing.assert_allclose(M.predict_delta(model, moved, cheap), before, rtol=1e-5, atol=1e-3)
    # ... but the structure is seen: stretching one bond changes the prediction.
    stretched = mols[0].copy()
    stretched.positions[1] += 0.3 * (stretched.positions[1] - stretched.positions[0])
    changed = M.predict_delta(model, [stretched], cheap[:1])[0]
    assert abs(changed - before[0]) > 1e-2


def test_save_load_identical(model, g2, tmp_path: Path) -> None:
    atoms, cheap, _ = g2
    folder = M.save(model, tmp_path / "delta", metadata={"trained_on": "test"})
    document = json.loads((folder / "config.json").read_text())
    assert document["config"]["n_features"] == 32
    assert document["metadata"] == {"trained_on": "test"}
    loaded = M.load(folder)
    assert not loaded.training
    expected = M.predict(model, atoms[:30], cheap[:30])
    assert M.predict(loaded, atoms[:30], cheap[:30]) == expected
    assert M.predict(str(folder), atoms[:30], cheap[:30]) == expected
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_short_fit_lowers_training_loss_and_is_deterministic(g2) -> None:
    atoms, cheap, reference = g2
    idx = list(range(0, 148, 12))  # 13 molecules across both sets
    mols, c, r = [atoms[i] for i in idx], cheap[idx], reference[idx]
    config = M.Config(n_features=32, n_interactions=2, n_rbf=16)
    history: list[dict[str, float]] = []
    net = M.fit(
        mols,
        c,
        r,
        epochs=60,
        seed=5,
        config=config,
        batch_size=8,
        lr=1e-2,
        val_fraction=0,
        history=history,
    )
    assert len(history) == 60
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    trained = {int(z) for a in mols for z in a.numbers}
    assert set(np.nonzero(net.trained_elements.numpy())[0].tolist()) == trained  # no hold-out
    beh = _by_name(atoms, "BeH")[0]
    assert M.unseen_elements(net, [mols[0], beh]) == [[], [4]]  # BeH is G2's only Be molecule
    train_mae = np.mean(np.abs(np.asarray(M.predict(net, mols, c)) - r))
    prior_only = net.prior(M.make_batch(mols, c, cutoff=config.cutoff)).numpy() + c
    assert train_mae < np.mean(np.abs(prior_only - r))  # the network adds to its linear prior
    again = M.fit(
        mols, c, r, epochs=60, seed=5, config=config, batch_size=8, lr=1e-2, val_fraction=0
    )
    for key, value in net.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_kfold_partitions() -> None:
    splits = M.kfold(148, folds=5, seed=0)
    tests = [set(test.tolist()) for _, test in splits]
    assert sorted(len(t) for t in tests) == [29, 29, 30, 30, 30]
    assert set().union(*tests) == set(range(148))
    assert sum(len(t) for t in tests) == 148
    for train, test in splits:
        assert not set(train.tolist()) & set(test.tolist())
        assert len(train) + len(test) == 148
    assert [t.tolist() for _, t in M.kfold(148, 5, seed=1)] != [t.tolist() for _, t in splits]


def test_cross_validation_never_trains_on_test_molecules(g2, monkeypatch) -> None:
    atoms, cheap, reference = g2
    sub = list(range(0, 148, 8))  # 19 molecules
    mols, c, r = [atoms[i] for i in sub], cheap[sub], reference[sub]
    seen_fit: list[set[str]] = []
    seen_linear: list[np.ndarray] = []
    real_fit, real_linear = M.fit, M.fit_linear

    def spy_fit(train_atoms, *args, **kwargs):
        seen_fit.append({a.info["name"] for a in train_atoms})
        return real_fit(train_atoms, *args, **kwargs)

    def spy_linear(cheap_values, target, *args, **kwargs):
        seen_linear.append(np.asarray(target))
        return real_linear(cheap_values, target, *args, **kwargs)

    monkeypatch.setattr(M, "fit", spy_fit)
    monkeypatch.setattr(M, "fit_linear", spy_linear)
    config = M.Config(n_features=16, n_interactions=1, n_rbf=8)
    result = M.cross_validate(
        mols, c, r, folds=3, seed=2, epochs=2, config=config, predictions=(oof := {})
    )
    assert len(result["folds"]) == 3 and len(seen_fit) == 3
    for (train, test), names, row in zip(result["splits"], seen_fit, result["folds"], strict=True):
        test_names = {mols[i].info["name"] for i in test}
        assert names == {mols[i].info["name"] for i in train}
        assert not names & test_names
        assert row["n_test"] == len(test)
    # Three linear fits per fold in cross_validate and one inside each fit, all on training targets
    # (reference, or reference − cheap); none of a test molecule's values reaches them.
    assert len(seen_linear) == 4 * 3
    for fold, (train, test) in enumerate(result["splits"]):
        allowed = set(r[train].tolist()) | set((r - c)[train].tolist())
        forbidden = set(r[test].tolist()) | set((r - c)[test].tolist())
        for target in seen_linear[4 * fold : 4 * fold + 4]:
            assert set(target.tolist()) <= allowed
            assert not set(target.tolist()) & forbidden
    # The reported MAEs are those of the out-of-fold predictions.
    for name in M.PREDICTORS:
        assert not np.isnan(oof[name]).any()
        assert np.isclose(np.mean([row[name] for row in result["folds"]]), result["mean"][name])
    assert result["mean"]["cheap"] == pytest.approx(
        np.mean([np.mean(np.abs(c[t] - r[t])) for _, t in result["splits"]])
    )


def test_cv_script_end_to_end(tmp_path: Path, capsys) -> None:
    cv = _import("cv")
    out = tmp_path / "trained"
    argv = ["--standin", "elements", "--folds", "2", "--epochs", "1", "--out", str(out)]
    assert cv.main(argv) == 0
    printed = capsys.readouterr().out
    assert "delta_schnet" in printed and "molecules/s" in printed
    document = json.loads((out / "cv.json").read_text())
    assert len(document["folds"]) == 2 and len(document["predictions"]) == 148
    assert set(document["mean"]) == set(M.PREDICTORS)
    assert len(M.predict(out, standin.molecules()[:3], [1.0, 2.0, 3.0])) == 3
