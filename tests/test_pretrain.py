"""Self-supervised pretraining (txmorph.train.pretrain): deterministic for a seed, label-free
by construction and in the pipeline, and its conv blocks start the classifiers."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from txmorph.train.augment import Augmentation
from txmorph.train.model import PatchClassifier
from txmorph.train.pretrain import (
    PretrainParams,
    UnlabelledSection,
    cut_pooled,
    load_encoder,
    nt_xent,
    pretrain_encoder,
    save_encoder,
)
from txmorph.train.training import TrainingParams, train_classifier

from conftest import run_snakemake, tiny_config

PARAMS = PretrainParams(method="simclr", steps=4, batch_size=16)
AUGMENT = Augmentation(intensity=0.2, blur_px=1.0, noise=0.05)


def _sections() -> list[UnlabelledSection]:
    rng = np.random.default_rng(0)
    image = (rng.random((200, 180)) * 1000).astype(np.uint16)
    tissue = np.zeros(image.shape, bool)
    tissue[20:150, 30:160] = True
    other = (rng.random((150, 150)) * 3000).astype(np.uint16)
    return [UnlabelledSection(image, tissue, 0.0, 1000.0),
            UnlabelledSection(other, np.zeros(other.shape, bool), 0.0, 3000.0)]


def _pretrain(seed: int):
    return pretrain_encoder(_sections(), [32, 64], 32, (8, 16), PARAMS, AUGMENT, seed, threads=1)


def test_pretraining_is_deterministic_for_a_seed_and_differs_between_seeds() -> None:
    first, again, other = _pretrain(5), _pretrain(5), _pretrain(6)
    assert first.features.keys() == again.features.keys()
    for name, tensor in first.features.items():
        assert torch.equal(tensor, again.features[name]), name
    assert (first.input_mean, first.input_std) == (again.input_mean, again.input_std)
    assert first.info["loss_curve"] == again.info["loss_curve"]
    assert any(not torch.equal(t, other.features[n]) for n, t in first.features.items()
               if t.dtype.is_floating_point)


def test_pretraining_takes_no_labels() -> None:
    # Nothing in its inputs can carry a label: images, DAPI tissue, intensity ranges only.
    parameters = set(inspect.signature(pretrain_encoder).parameters)
    assert parameters == {"sections", "sizes", "network_input", "widths", "params",
                          "augmentation", "seed", "threads", "device", "log"}
    assert set(UnlabelledSection.__dataclass_fields__) == {"image", "tissue", "low", "high"}


def test_contrastive_loss_rewards_matching_pairs() -> None:
    z = torch.nn.functional.normalize(torch.randn(32, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    matched = nt_xent(z, z, 0.1)
    shuffled = nt_xent(z, z[torch.randperm(32, generator=torch.Generator().manual_seed(1))], 0.1)
    assert float(matched) < 0.5 < float(shuffled)


def test_views_are_normalised_and_pooled_windows() -> None:
    section = _sections()[0]
    view = cut_pooled(section, (100, 90), 64, 32)
    window = section.image[68:132, 58:122].astype(np.float64) / 1000.0
    expected = window.reshape(32, 2, 32, 2).mean((1, 3))
    np.testing.assert_allclose(view, expected, atol=1e-6)
    # past the border the window is reflected (same shape, finite)
    assert np.isfinite(cut_pooled(section, (0, 0), 64, 32)).all()


def test_encoder_round_trips_and_starts_the_classifier(tmp_path) -> None:
    encoder = _pretrain(1)
    save_encoder(tmp_path / "encoder.pt", encoder)
    loaded = load_encoder(tmp_path / "encoder.pt")
    for name, tensor in encoder.features.items():
        assert torch.equal(tensor, loaded.features[name])
    rng = np.random.default_rng(0)
    images = (rng.random((40, 32, 32)) * 1000).astype(np.uint16)
    labels, sections = np.arange(40) % 2, np.zeros(40, np.int64)
    params = TrainingParams(epochs=1, patience=1, batch_size=8, seed=2, widths=(8, 16),
                            learning_rate=1e-12, weight_decay=0.0)
    model, _, _ = train_classifier(images, labels, sections, {0: (0.0, 1000.0)},
                                   ["background", "tissue"], 32, params, threads=1,
                                   encoder=loaded)
    # A vanishing learning rate: the conv weights are still the encoder's.
    for name, tensor in loaded.features.items():
        if name.endswith("weight") and tensor.ndim == 4:
            torch.testing.assert_close(model.features.state_dict()[name], tensor)
    assert float(model.input_mean) == pytest.approx(loaded.input_mean)
    with pytest.raises(ValueError, match="widths"):
        train_classifier(images, labels, sections, {0: (0.0, 1000.0)}, ["background", "tissue"],
                         32, TrainingParams(epochs=1, seed=2), threads=1, encoder=loaded)


def test_pipeline_pretrains_on_every_sections_dapi_only_and_fits_ensemble_weights(tmp_path) -> None:
    config = tiny_config()
    config["training"]["pretrain"].update(method="simclr", steps=3, batch_size=8, threads=1)
    config["probmap"]["ensemble"] = "weighted"
    dry = run_snakemake(tmp_path, "-n", "--cores", "1", "pretrain", "ensemble_weights",
                        config=config)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    text = dry.stdout + dry.stderr
    blocks = {block.split("\n")[0].strip(): block for block in text.split("rule ")[1:]}

    def data_inputs(rule: str) -> set[str]:  # the job's inputs under results/ (not code)
        line = next(ln for ln in blocks[rule].splitlines() if ln.strip().startswith("input:"))
        return {p for p in line.split(":", 1)[1].replace(",", " ").split()
                if p.startswith("results/")}

    assert data_inputs("pretrain:") == {
        "results/sections/train/image.tif", "results/sections/test/image.tif",
        "results/masks/train.dapi.tif", "results/masks/test.dapi.tif"}
    assert data_inputs("ensemble_weights:") == {
        "results/patches/size32.h5", "results/patches/size64.h5",
        "results/models/size32.pt", "results/models/size64.pt"}

    result = run_snakemake(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert (tmp_path / "results/models/encoder.pt").is_file()
    assert "self-supervised encoder" in (tmp_path / "results/logs/train/size32.log").read_text()
    fitted = __import__("json").loads((tmp_path / "results/models/ensemble.json").read_text())
    assert fitted["method"] == "weighted" and fitted["validation_spots"] > 0
    assert sum(fitted["weights"].values()) == pytest.approx(1.0)


def test_a_frozen_encoder_stays_as_pretrained_and_the_head_learns() -> None:
    encoder = _pretrain(2)
    rng = np.random.default_rng(1)
    images = (rng.random((48, 32, 32)) * 1000).astype(np.uint16)
    labels, sections = np.arange(48) % 2, np.zeros(48, np.int64)
    params = TrainingParams(epochs=2, patience=2, batch_size=8, seed=3, widths=(8, 16),
                            learning_rate=1e-2)
    model, _, _ = train_classifier(images, labels, sections, {0: (0.0, 1000.0)},
                                   ["background", "tissue"], 32, params, threads=1,
                                   encoder=encoder, freeze_encoder=True)
    state = model.features.state_dict()
    for name, tensor in encoder.features.items():  # weights and BatchNorm statistics alike
        assert torch.equal(state[name], tensor), name
    with torch.random.fork_rng():
        torch.manual_seed(3)  # training initialises the model right after seeding
        initial = PatchClassifier(32, 2, 32, (8, 16))
    assert not torch.equal(model.head[0].weight, initial.head[0].weight)  # the head learnt
