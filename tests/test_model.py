"""PatchClassifier geometry, dense/per-patch equivalence, and the model file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from txmorph.train.model import INTENSITY_METHOD, PatchClassifier, fused_for_inference, load_model, save_model


def _trained_a_little(patch_size: int, seed: int = 0) -> PatchClassifier:
    """A model whose BatchNorm running stats and standardisation are not the identity."""
    torch.manual_seed(seed)
    model = PatchClassifier(patch_size, 4)
    model.set_standardisation(0.3, 0.7)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        x = torch.rand(8, 1, patch_size, patch_size) * 2
        y = torch.randint(0, 4, (8,))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.mark.parametrize(("patch_size", "stride"), [(32, 4), (64, 8), (160, 20)])
def test_geometry(patch_size: int, stride: int) -> None:
    model = PatchClassifier(patch_size, 3)
    assert model.stride == stride
    assert model.patch_size == patch_size and model.network_input == 32 and model.n_classes == 3
    assert model(torch.zeros(2, 1, patch_size, patch_size)).shape == (2, 3)


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple"):
        PatchClassifier(48, 4)
    with pytest.raises(ValueError, match="network_input"):
        PatchClassifier(32, 4, widths=(16, 32, 64))
    with pytest.raises(ValueError, match="expected patches"):
        PatchClassifier(32, 4)(torch.zeros(1, 1, 64, 64))


@pytest.mark.parametrize("patch_size", [32, 64])
def test_forward_dense_equals_per_patch(patch_size: int) -> None:
    model = _trained_a_little(patch_size)
    stride = model.stride
    n_out = 5
    size = (n_out - 1) * stride + patch_size
    x = torch.rand(2, 1, size, size + stride)
    with torch.no_grad():
        dense = model.forward_dense(x)
        assert dense.shape == (2, 4, n_out, n_out + 1)
        for i in range(n_out):
            for j in range(n_out + 1):
                crop = x[:, :, i * stride : i * stride + patch_size, j * stride : j * stride + patch_size]
                torch.testing.assert_close(dense[:, :, i, j], model(crop), atol=1e-5, rtol=1e-5)


def test_fused_copy_matches_and_leaves_model_alone() -> None:
    model = _trained_a_little(32).train()
    fused = fused_for_inference(model)
    assert model.training and not fused.training
    x = torch.rand(3, 1, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(fused.forward_dense(x), model.eval().forward_dense(x),
                                   atol=1e-5, rtol=1e-5)


def _metadata() -> dict:
    return {
        "classes": ["background", "tissue", "GeneA", "GeneB"],
        "normalisation": {"intensity_method": INTENSITY_METHOD, "mean": 0.3, "std": 0.7},
        "config": {"patch_sizes": [32, 64], "nested": {"a": [1, 2.5, None, True]}},
    }


def test_save_load_round_trip(tmp_path, monkeypatch) -> None:
    model = _trained_a_little(64)
    path = tmp_path / "models" / "patch64.pt"
    save_model(path, model, _metadata())
    assert sorted(p.name for p in path.parent.iterdir()) == ["patch64.pt"]  # no temp file left

    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded, meta = load_model(path)
    assert seen.get("weights_only") is True
    assert not loaded.training
    for key, value in _metadata().items():
        assert meta[key] == value
    assert meta["patch_size"] == 64 and meta["network_input"] == 32 and meta["stride"] == 8
    assert meta["architecture"]["widths"] == [16, 32]
    json.dumps(meta)
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.rand(5, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # The file is plain tensors + Python types: loadable with weights_only directly.
    assert real_load(path, weights_only=True)["format"] == "txmorph.patch_classifier"


def test_save_rejects_bad_metadata(tmp_path) -> None:
    model = PatchClassifier(32, 4)
    with pytest.raises(ValueError, match="JSON"):
        save_model(tmp_path / "m.pt", model, {"mean": np.zeros(3)})
    with pytest.raises(ValueError, match="class names"):
        save_model(tmp_path / "m.pt", model, {"classes": ["a", "b"]})
    assert list(tmp_path.iterdir()) == []
