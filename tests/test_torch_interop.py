"""A microgradx checkpoint is a safetensors file that PyTorch reads: the weights a user trained here go
along into the same ``torch.nn`` model and give the same predictions. Skipped without PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")
from safetensors.torch import load_file  # noqa: E402

from microgradx.data import load_mnist_3_7  # noqa: E402
from microgradx.train import TrainConfig, Trainer, load_model, predict_proba, prepare  # noqa: E402


def _torch_model(name: str) -> torch.nn.Module:
    # The chapter's two models, as the chapter writes them in PyTorch.
    if name == "linear":
        return torch.nn.Linear(28 * 28, 1)
    return torch.nn.Sequential(torch.nn.Linear(28 * 28, 30), torch.nn.ReLU(), torch.nn.Linear(30, 1))


def _torch_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """microgradx's names and layout to torch.nn's: ``layers.0.weight`` (in, out) -> ``0.weight`` (out, in).
    The optimizer's buffers stay behind."""
    state = {}
    for name, t in tensors.items():
        if name.startswith("optimizer/"):
            continue
        key = name.removeprefix("layers.")
        state[key] = t.T.contiguous() if key.endswith("weight") else t
    return state


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_a_trained_checkpoint_loads_into_torch_nn_and_predicts_the_same(tmp_path, name):
    dataset = prepare(load_mnist_3_7())
    trainer = Trainer(TrainConfig.for_model(name), dataset)     # the chapter's epochs: a trained model
    trainer.fit(tmp_path)
    path = tmp_path / "checkpoint.safetensors"

    ours, _ = load_model(path)
    expected = predict_proba(ours, dataset.x_valid)

    model = _torch_model(name)
    model.load_state_dict(_torch_state(load_file(path)))      # strict: every name and shape must fit
    with torch.no_grad():
        got = torch.sigmoid(model(torch.from_numpy(dataset.x_valid))).numpy().reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.mean((got > 0.5) == (dataset.y_valid[:, 0] == 1)) > 0.9     # PyTorch's model classifies too
