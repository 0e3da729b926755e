"""The benchmark workloads, each written once per implementation.

Every workload is here in up to six versions: microgradx, a hand-written numpy "floor" with hand-derived
gradients (what numpy alone allows: the practical lower bound), and the peers PyTorch (CPU, eager),
HIPS autograd and karpathy's micrograd. The versions compute the same thing, in the same dtype, from the
same initial weights; ``tests/test_benchmarks_smoke.py`` checks that their losses and gradients agree,
so that a broken floor (one that skips work) cannot make microgradx look good.

Peers are imported lazily, only by the classes that wrap them; absent peers are reported by
:func:`peer_versions` and skipped by the runner. The timing itself lives in ``harness.py``.

Workloads:

1. ``linear``: fastbook chapter 4's 3-vs-7 linear model, ``mnist_loss``, plain SGD, one epoch.
2. ``mlp``: the chapter's two-layer net (784-30-1, ReLU), likewise.
3. ``moons``: micrograd's demo, MLP(2, [16, 16, 1]) on 100 two-moons points, max-margin loss plus
   1e-4 * sum(p*p), one SGD step; as scalars (micrograd's way) and as matrices.
4. ``ops``: forward + backward of one op, on tiny and on large arrays.
5. ``chain``: a long chain of scalar ops (alternately ``* 0.999`` and ``+ 0.001``), forward + backward.
6. ``transforms``: ``hvp`` of an MLP's loss against its gradient, ``jacobian`` of a 100 -> 100 map, and
   ``jvp`` of functions of 1000 inputs, two ways.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmark the checkout this file lives in, installed or not
    sys.path.insert(0, str(REPO))

import microgradx as mg  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data"
PEERS = {"torch": "PyTorch", "autograd": "HIPS autograd", "micrograd": "micrograd"}


def peer_versions() -> dict[str, str | None]:
    """Installed version of each peer's distribution, or None when it is absent."""
    versions: dict[str, str | None] = {}
    for module in PEERS:
        try:
            versions[module] = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            versions[module] = None
    return versions


def have(module: str) -> bool:
    return peer_versions()[module] is not None


def _torch() -> Any:
    return importlib.import_module("torch")


# The PyTorch adapters' shared halves: each computes its loss its own way, then hands it here.

def torch_loss_and_grads(loss: Any, params: list[Any]) -> tuple[float, list[np.ndarray]]:
    """The loss and a copy of each parameter's gradient, which is then cleared for the next call."""
    loss.backward()
    grads = [p.grad.numpy().copy() for p in params]
    for p in params:
        p.grad = None
    return loss.item(), grads


def torch_sgd_step(torch: Any, loss: Any, params: list[Any], lr: float) -> None:
    """One plain SGD step in place, as PyTorch users write it."""
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None


# --------------------------------------------------------------------------------------------------
# Data and initial weights
# --------------------------------------------------------------------------------------------------

N_TRAIN = 12_396  # images in the chapter's 3-vs-7 training set


def shown(path: Path) -> str:
    """``path`` for the report: relative to the checkout when beside it, so that a report committed to the
    docs names no folder of the machine it ran on."""
    path = Path(path).resolve()
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)


def mnist_train(path: Path | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The 3-vs-7 training set as features (N, 784) float32 in [0, 1] and targets (N, 1) float32.

    Read from ``path`` (default: the IDX files in the shared data folder beside the checkout) with
    microgradx.data, or with a minimal IDX reader of our own while that module does not exist. Without
    the files: random images of the same size, labelled as such in the returned description.
    """
    folder = Path(path) if path is not None else SHARED_DATA / "mnist_3_7_idx"
    try:
        from microgradx.data import load_mnist_3_7, to_features, to_targets
    except ImportError:
        load_mnist_3_7 = None
    idx_images = folder / "train-images-idx3-ubyte.gz"
    if load_mnist_3_7 is not None and folder.is_dir():
        data = load_mnist_3_7(folder)
        x, y = to_features(data.train_images), to_targets(data.train_labels)
        note = f"MNIST 3s and 7s from {shown(folder)}"
    else:
        if idx_images.is_file():
            images = _read_idx(idx_images)
            labels = _read_idx(folder / "train-labels-idx1-ubyte.gz")
            note = f"MNIST 3s and 7s from {shown(folder)} (own IDX reader)"
        else:
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8)
            labels = rng.choice(np.array([3, 7], dtype=np.uint8), size=N_TRAIN)
            note = f"SYNTHETIC random images ({shown(folder)} not found)"
        # As microgradx.data.to_features and to_targets: pixels scaled to [0, 1]; 1.0 for a 3.
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        y = (labels == 3).astype(np.float32).reshape(-1, 1)
    return x, y, f"{note}: {len(x):,} images"


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (big-endian header: magic, then one int32 per dimension)."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Callable[[], Iterator[Any]]:
    """A fresh shuffled pass over (x, y) per call: microgradx's DataLoader when present, else our own."""
    try:
        from microgradx.data import DataLoader
    except ImportError:
        rng = np.random.default_rng(seed)

        def epoch() -> Iterator[Any]:
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                rows = order[start:start + batch_size]
                yield x[rows], y[rows]
        return epoch
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=True, seed=seed)
    return lambda: iter(loader)


def mnist_init(model: str, seed: int = 0) -> list[np.ndarray]:
    """Initial weights, float32.

    linear: the chapter's ``init_params`` (standard normal) for w (784, 1) and b (1,).
    mlp: PyTorch's nn.Linear default, uniform(+-1/sqrt(fan_in)), for (784, 30), (30,), (30, 1), (1,).
    """
    rng = np.random.default_rng(seed)
    if model == "linear":
        shapes = [(784, 1), (1,)]
        return [rng.standard_normal(s).astype(np.float32) for s in shapes]
    shapes_and_fan_in = [((784, 30), 784), ((30,), 784), ((30, 1), 30), ((1,), 30)]
    return [(rng.uniform(-1, 1, s) / np.sqrt(n)).astype(np.float32) for s, n in shapes_and_fan_in]


def two_moons(n: int = 100, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles, as sklearn's make_moons: X (n, 2) float64, y (n,) of -1 and +1."""
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    t_outer = np.linspace(0, np.pi, n_outer)
    t_inner = np.linspace(0, np.pi, n_inner)
    X = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
                        np.stack([1 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)])
    X += noise * rng.standard_normal(X.shape)
    y = np.concatenate([-np.ones(n_outer), np.ones(n_inner)])
    return X, y


MOONS_SIZES = [2, 16, 16, 1]


def moons_init(seed: int = 0) -> list[np.ndarray]:
    """micrograd's init for MLP(2, [16, 16, 1]): weights uniform(-1, 1), biases 0; float64.

    Returned as matrices [W1 (2, 16), b1 (16,), W2, b2, W3 (16, 1), b3 (1,)]: column j of a layer's W
    holds the weights of that layer's neuron j.
    """
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(MOONS_SIZES, MOONS_SIZES[1:], strict=False):
        params += [rng.uniform(-1, 1, (n_in, n_out)), np.zeros(n_out)]
    return params


# --------------------------------------------------------------------------------------------------
# 1, 2: the chapter's linear model and two-layer net, one epoch of SGD
# --------------------------------------------------------------------------------------------------
# Each trainer holds its own copy of the weights and offers
#   step(xb, yb, lr)          one SGD step (what the timed epoch runs),
#   loss_and_grads(xb, yb)    the loss and the gradients as numpy arrays, without updating (for tests),
#   load(params)              overwrite its weights in place (each timed epoch starts from the same ones),
#   weights()                 its current weights as numpy arrays (for tests).

def _floor_linear(params: list[np.ndarray], xb: np.ndarray, yb: np.ndarray) -> tuple[Any, list]:
    w, b = params
    z = xb @ w + b
    p = 1 / (1 + np.exp(-z))  # overflow to inf gives p = 0 exactly: fine (errstate is set by the caller)
    loss = np.where(yb == 1, 1 - p, p).mean()
    # d loss/dp = -1/n where y == 1, else +1/n; targets are 0 or 1, so that is (1 - 2y) / n.
    dz = (1 - 2 * yb) * (p * (1 - p)) * (1 / len(xb))
    return loss, [xb.T @ dz, dz.sum(axis=0)]


def _floor_mlp(params: list[np.ndarray], xb: np.ndarray, yb: np.ndarray) -> tuple[Any, list]:
    w1, b1, w2, b2 = params
    z1 = xb @ w1 + b1
    h = np.maximum(z1, 0)
    z2 = h @ w2 + b2
    p = 1 / (1 + np.exp(-z2))
    loss = np.where(yb == 1, 1 - p, p).mean()
    dz2 = (1 - 2 * yb) * (p * (1 - p)) * (1 / len(xb))
    dz1 = (dz2 @ w2.T) * (z1 > 0)
    return loss, [xb.T @ dz1, dz1.sum(axis=0), h.T @ dz2, dz2.sum(axis=0)]


class _NumpyWeights:
    """For trainers whose weights are plain numpy arrays in ``self.params``."""

    params: list[np.ndarray]

    def load(self, params: list[np.ndarray]) -> None:
        for p, q in zip(self.params, params, strict=True):
            p[...] = q

    def weights(self) -> list[np.ndarray]:
        return self.params


class FloorTrainer(_NumpyWeights):
    """numpy with hand-derived gradients: the floor."""

    name = "numpy floor"

    def __init__(self, model: str, params: list[np.ndarray]) -> None:
        self.params = [p.copy() for p in params]
        self.loss_grads = _floor_linear if model == "linear" else _floor_mlp

    def loss_and_grads(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        with np.errstate(over="ignore"):
            loss, grads = self.loss_grads(self.params, xb, yb)
        return float(loss), grads

    def step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> None:
        _, grads = self.loss_grads(self.params, xb, yb)
        for p, g in zip(self.params, grads, strict=True):
            p -= lr * g


def chapter_forward(model: str, params: list[Any], xb: Any) -> Any:
    """The chapter's models, written once for microgradx Values and torch tensors alike."""
    if model == "linear":
        w, b = params
        return xb @ w + b
    w1, b1, w2, b2 = params
    return (xb @ w1 + b1).relu() @ w2 + b2


def mnist_loss(z: Any, yb: Any, where: Callable[..., Any]) -> Any:
    """The chapter's loss: sigmoid, then how far each prediction is from its target, averaged."""
    p = z.sigmoid()
    return where(yb == 1, 1 - p, p).mean()


class MicrogradxTrainer:
    name = "microgradx"

    def __init__(self, model: str, params: list[np.ndarray]) -> None:
        self.model = model
        self.params = [mg.Value(p.copy()) for p in params]

    def load(self, params: list[np.ndarray]) -> None:
        for p, q in zip(self.params, params, strict=True):
            p.data[...] = q

    def weights(self) -> list[np.ndarray]:
        return [p.data for p in self.params]

    def _loss(self, xb: np.ndarray, yb: np.ndarray) -> Any:
        return mnist_loss(chapter_forward(self.model, self.params, xb), yb, mg.where)

    def loss_and_grads(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        loss = self._loss(xb, yb)
        loss.backward()
        grads = [p.grad for p in self.params]
        for p in self.params:
            p.zero_grad()
        return loss.item(), grads

    def step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> None:
        self._loss(xb, yb).backward()
        for p in self.params:
            p.data -= lr * p.grad
            p.zero_grad()


class CompiledTrainer(MicrogradxTrainer):
    """MicrogradxTrainer's step, forward and backward, traced once per batch shape by mg.compile and
    replayed; the update stays outside, as in a user's loop (and the Learner's): optim.SGD's step reads
    the gradients the replay leaves on the weights."""

    name = "microgradx compiled"

    def __init__(self, model: str, params: list[np.ndarray]) -> None:
        super().__init__(model, params)
        self.opt: Any = None

        def forward_backward(xb: np.ndarray, yb: np.ndarray) -> Any:
            loss = self._loss(xb, yb)
            loss.backward()
            return loss
        self.compiled = mg.compile(forward_backward)

    def loss_and_grads(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        loss = self.compiled(xb, yb)
        grads = [p.grad for p in self.params]
        for p in self.params:
            p.zero_grad()
        return float(loss.data), grads

    def step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> None:
        if self.opt is None or self.opt.lr != lr:
            self.opt = mg.optim.SGD(self.params, lr=lr)
        self.opt.zero_grad()
        self.compiled(xb, yb)
        self.opt.step()


class NnTrainer:
    """microgradx as its users write the loop: nn.Linear or nn.MLP, nn.functional.mnist_loss, optim.SGD."""

    name = "microgradx nn+optim"

    def __init__(self, model: str, params: list[np.ndarray]) -> None:
        from microgradx import nn, optim
        self.net = nn.Linear(784, 1) if model == "linear" else nn.MLP(784, [30, 1])
        self.params = self.net.parameters()
        self.loss_fn = nn.functional.mnist_loss
        self.sgd = optim.SGD
        self.opt: Any = None
        self.load(params)

    def load(self, params: list[np.ndarray]) -> None:
        for p, q in zip(self.params, params, strict=True):
            assert p.shape == q.shape, (p.shape, q.shape)
            p.data[...] = q

    def weights(self) -> list[np.ndarray]:
        return [p.data for p in self.params]

    def loss_and_grads(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        loss = self.loss_fn(self.net(xb), yb)
        loss.backward()
        grads = [p.grad for p in self.params]
        self.net.zero_grad()
        return loss.item(), grads

    def step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> None:
        if self.opt is None or self.opt.lr != lr:
            self.opt = self.sgd(self.params, lr=lr)
        self.loss_fn(self.net(xb), yb).backward()
        self.opt.step()
        self.opt.zero_grad()


class TorchTrainer:
    """PyTorch eager on the CPU; batches are wrapped with torch.from_numpy (no copy)."""

    name = "PyTorch eager"

    def __init__(self, model: str, params: list[np.ndarray]) -> None:
        self.torch = _torch()
        self.model = model
        self.params = [self.torch.tensor(p, requires_grad=True) for p in params]

    def load(self, params: list[np.ndarray]) -> None:
        with self.torch.no_grad():
            for p, q in zip(self.params, params, strict=True):
                p.copy_(self.torch.from_numpy(q))

    def weights(self) -> list[np.ndarray]:
        return [p.detach().numpy() for p in self.params]

    def _loss(self, xb: np.ndarray, yb: np.ndarray) -> Any:
        xb, yb = self.torch.from_numpy(xb), self.torch.from_numpy(yb)
        return mnist_loss(chapter_forward(self.model, self.params, xb), yb, self.torch.where)

    def loss_and_grads(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        return torch_loss_and_grads(self._loss(xb, yb), self.params)

    def step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> None:
        torch_sgd_step(self.torch, self._loss(xb, yb), self.params, lr)


class AutogradTrainer(_NumpyWeights):
    """HIPS autograd: a loss function of the weights, differentiated by ``value_and_grad``."""

    name = "HIPS autograd"

    def __init__(self, model: str, params: list[np.ndarray]) -> None:
        from autograd import value_and_grad
        self.params = [p.copy() for p in params]
        self.value_and_grad = value_and_grad(_autograd_mnist_loss)
        self.model = model

    def loss_and_grads(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        loss, grads = self.value_and_grad(self.params, self.model, xb, yb)
        return float(loss), list(grads)

    def step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> None:
        _, grads = self.value_and_grad(self.params, self.model, xb, yb)
        for p, g in zip(self.params, grads, strict=True):
            p -= lr * g


def _autograd_sigmoid() -> Callable[[Any], Any]:
    """autograd's own sigmoid primitive, expit; it wraps scipy's, so without scipy a composite."""
    try:
        from autograd.scipy.special import expit
    except ImportError:
        import autograd.numpy as anp
        return lambda z: 1 / (1 + anp.exp(-z))
    return expit


def _autograd_mnist_loss(params: list[Any], model: str, xb: np.ndarray, yb: np.ndarray) -> Any:
    import autograd.numpy as anp

    if model == "linear":
        w, b = params
        z = anp.dot(xb, w) + b
    else:
        w1, b1, w2, b2 = params
        z = anp.dot(anp.maximum(anp.dot(xb, w1) + b1, 0.0), w2) + b2
    p = _autograd_sigmoid()(z)
    return anp.mean(anp.where(yb == 1, 1 - p, p))


def epoch(trainer: Any, params0: list[np.ndarray], loader: Callable[[], Iterator[Any]],
          lr: float) -> Callable[[], None]:
    """One epoch of SGD, always from the weights ``params0`` (so every timed epoch does the same work)."""
    def run() -> None:
        trainer.load(params0)
        with np.errstate(over="ignore"):  # the floor's plain sigmoid may overflow exp(-z) to inf: harmless
            for xb, yb in loader():
                trainer.step(xb, yb, lr)
    return run


MNIST_TRAINERS = [FloorTrainer, MicrogradxTrainer, CompiledTrainer, NnTrainer, TorchTrainer, AutogradTrainer]
TRAINER_PEER = {TorchTrainer: "torch", AutogradTrainer: "autograd"}


# --------------------------------------------------------------------------------------------------
# 3: micrograd's demo, one SGD step on two moons
# --------------------------------------------------------------------------------------------------
# Each version offers step(lr) and loss_and_grads() (gradients as matrices shaped like moons_init's).

ALPHA = 1e-4  # the demo's L2 regularisation strength


def svm_loss(params: list[Any], scores: Any, y: Any) -> Any:
    """The demo's loss on matrices: mean max-margin loss plus ALPHA * sum(p*p); Values or tensors."""
    data_loss = (1 + -y * scores).relu().mean()
    return data_loss + ALPHA * sum((p * p).sum() for p in params)


def moons_forward(params: list[Any], X: Any) -> Any:
    W1, b1, W2, b2, W3, b3 = params
    h = (X @ W1 + b1).relu()
    h = (h @ W2 + b2).relu()
    return h @ W3 + b3


def scalar_svm_loss(model: Any, inputs: list[list[Any]], y: list[float]) -> Any:
    """The demo's loss, number by number, as micrograd's demo notebook writes it."""
    scores = list(map(model, inputs))
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    return data_loss + ALPHA * sum(p * p for p in model.parameters())


class Neuron:
    """micrograd's nn.Neuron, on microgradx Values: weights in a list, one scalar Value each."""

    def __init__(self, w: np.ndarray, b: float, nonlin: bool) -> None:
        self.w = [mg.Value(float(wi)) for wi in w]
        self.b = mg.Value(float(b))
        self.nonlin = nonlin

    def __call__(self, x: list[Any]) -> Any:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Any]:
        return self.w + [self.b]


class ScalarMLP:
    """micrograd's nn.MLP, on microgradx Values, with the weights of ``moons_init``'s matrices."""

    def __init__(self, params: list[np.ndarray]) -> None:
        n_layers = len(params) // 2
        self.layers = [[Neuron(W[:, j], b[j], nonlin=k < n_layers - 1) for j in range(W.shape[1])]
                       for k, (W, b) in enumerate(zip(params[::2], params[1::2], strict=True))]

    def __call__(self, x: list[Any]) -> Any:
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def _neurons_to_matrices(layers: list[list[Any]]) -> list[np.ndarray]:
    """Gradients of neuron-by-neuron weights, gathered into moons_init's matrix layout."""
    grads = []
    for neurons in layers:
        grads.append(np.array([[float(wi.grad) for wi in n.w] for n in neurons]).T)
        grads.append(np.array([float(n.b.grad) for n in neurons]))
    return grads


def _sgd_scalars(params: list[Any], lr: float) -> None:
    for p in params:
        p.data -= lr * p.grad


class MoonsFloor:
    name = "numpy floor"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        self.params = [p.copy() for p in params]
        self.X, self.y = X, y.reshape(-1, 1)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        W1, b1, W2, b2, W3, b3 = self.params
        X, y = self.X, self.y
        z1 = X @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        s = h2 @ W3 + b3
        margin = 1 - y * s
        loss = np.maximum(margin, 0).mean() + ALPHA * sum((p * p).sum() for p in self.params)
        ds = -y * (margin > 0) / len(X)
        dz2 = (ds @ W3.T) * (z2 > 0)
        dz1 = (dz2 @ W2.T) * (z1 > 0)
        grads = [X.T @ dz1, dz1.sum(axis=0), h1.T @ dz2, dz2.sum(axis=0), h2.T @ ds, ds.sum(axis=0)]
        for g, p in zip(grads, self.params, strict=True):
            g += (2 * ALPHA) * p
        return float(loss), grads

    def step(self, lr: float) -> None:
        _, grads = self.loss_and_grads()
        for p, g in zip(self.params, grads, strict=True):
            p -= lr * g


class MoonsMicrogradxTensor:
    name = "microgradx tensor"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        self.params = [mg.Value(p.copy()) for p in params]
        self.X, self.y = X, y.reshape(-1, 1)

    def _loss(self) -> Any:
        return svm_loss(self.params, moons_forward(self.params, self.X), self.y)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss = self._loss()
        loss.backward()
        grads = [p.grad for p in self.params]
        for p in self.params:
            p.zero_grad()
        return loss.item(), grads

    def step(self, lr: float) -> None:
        self._loss().backward()
        for p in self.params:
            p.data -= lr * p.grad
            p.zero_grad()


class MoonsMicrogradxScalar:
    """Every number a scalar Value; inputs are plain floats (constants)."""

    name = "microgradx scalar"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        self.model = ScalarMLP(params)
        self.inputs = X.tolist()
        self.y = y.tolist()

    def _loss(self) -> Any:
        return scalar_svm_loss(self.model, self.inputs, self.y)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss = self._loss()
        loss.backward()
        grads = _neurons_to_matrices(self.model.layers)
        for p in self.model.parameters():
            p.zero_grad()
        return loss.item(), grads

    def step(self, lr: float) -> None:
        self._loss().backward()
        params = self.model.parameters()
        _sgd_scalars(params, lr)
        for p in params:
            p.zero_grad()


class MoonsMicrogradxScalarCompiled(MoonsMicrogradxScalar):
    """The scalar demo's forward and backward traced once by mg.compile, then replayed every step."""

    name = "microgradx scalar compiled"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        super().__init__(params, X, y)

        def forward_backward() -> Any:
            loss = self._loss()
            loss.backward()
            return loss
        self.compiled = mg.compile(forward_backward)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss = self.compiled()
        grads = _neurons_to_matrices(self.model.layers)
        for p in self.model.parameters():
            p.zero_grad()
        return float(loss.data), grads

    def step(self, lr: float) -> None:
        self.compiled()
        params = self.model.parameters()
        _sgd_scalars(params, lr)
        for p in params:
            p.zero_grad()


class MoonsMicrograd:
    """karpathy's micrograd: its own nn.MLP, weights overwritten with moons_init's; the demo's step."""

    name = "micrograd"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        from micrograd.engine import Value
        from micrograd.nn import MLP
        self.Value = Value
        self.model = MLP(MOONS_SIZES[0], MOONS_SIZES[1:])
        for layer, W, b in zip(self.model.layers, params[::2], params[1::2], strict=True):
            for j, neuron in enumerate(layer.neurons):
                for wi, v in zip(neuron.w, W[:, j], strict=True):
                    wi.data = float(v)
                neuron.b.data = float(b[j])
        self.X, self.y = X.tolist(), y.tolist()

    def _loss(self) -> Any:
        inputs = [list(map(self.Value, row)) for row in self.X]  # as the demo: inputs are Values too
        return scalar_svm_loss(self.model, inputs, self.y)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss = self._loss()
        self.model.zero_grad()
        loss.backward()
        return loss.data, _neurons_to_matrices([layer.neurons for layer in self.model.layers])

    def step(self, lr: float) -> None:
        loss = self._loss()
        self.model.zero_grad()
        loss.backward()
        _sgd_scalars(self.model.parameters(), lr)


class MoonsTorch:
    name = "PyTorch eager"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        torch = self.torch = _torch()
        self.params = [torch.tensor(p, requires_grad=True) for p in params]
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))

    def _loss(self) -> Any:
        return svm_loss(self.params, moons_forward(self.params, self.X), self.y)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        return torch_loss_and_grads(self._loss(), self.params)

    def step(self, lr: float) -> None:
        torch_sgd_step(self.torch, self._loss(), self.params, lr)


class MoonsAutograd:
    name = "HIPS autograd"

    def __init__(self, params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
        from autograd import value_and_grad
        self.params = [p.copy() for p in params]
        self.X, self.y = X, y.reshape(-1, 1)
        self.value_and_grad = value_and_grad(_autograd_svm_loss)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        loss, grads = self.value_and_grad(self.params, self.X, self.y)
        return float(loss), list(grads)

    def step(self, lr: float) -> None:
        _, grads = self.value_and_grad(self.params, self.X, self.y)
        for p, g in zip(self.params, grads, strict=True):
            p -= lr * g


def _autograd_svm_loss(params: list[Any], X: np.ndarray, y: np.ndarray) -> Any:
    import autograd.numpy as anp

    W1, b1, W2, b2, W3, b3 = params
    h = anp.maximum(anp.dot(X, W1) + b1, 0.0)
    h = anp.maximum(anp.dot(h, W2) + b2, 0.0)
    s = anp.dot(h, W3) + b3
    return anp.mean(anp.maximum(1 - y * s, 0.0)) + ALPHA * sum(anp.sum(p * p) for p in params)


MOONS_VERSIONS = [MoonsFloor, MoonsMicrogradxTensor, MoonsTorch, MoonsAutograd, MoonsMicrogradxScalar,
                  MoonsMicrogradxScalarCompiled,
                  MoonsMicrograd]
MOONS_PEER = {MoonsTorch: "torch", MoonsAutograd: "autograd", MoonsMicrograd: "micrograd"}


# --------------------------------------------------------------------------------------------------
# 4: one op, forward + backward
# --------------------------------------------------------------------------------------------------
# OPS[name] = (number of inputs, numpy forward + hand backward, the op on Values or tensors, HIPS op).
# A floor takes the inputs and the output's gradient g and returns (output, input gradients).

def _sigmoid_floor(x: np.ndarray, g: Any) -> tuple[Any, tuple]:
    y = 1 / (1 + np.exp(-x))
    return y, (g * (y * (1 - y)),)


def _tanh_floor(x: np.ndarray, g: Any) -> tuple[Any, tuple]:
    y = np.tanh(x)
    return y, (g * (1 - y * y),)


def _exp_floor(x: np.ndarray, g: Any) -> tuple[Any, tuple]:
    y = np.exp(x)
    return y, (g * y,)


def _matmul_floor(a: np.ndarray, b: np.ndarray, g: Any) -> tuple[Any, tuple]:
    if a.ndim == 1:  # (n,) @ (n,): a dot product
        return a @ b, (g * b, g * a)
    return a @ b, (g @ b.T, a.T @ g)


def _hips(name: str) -> Callable[..., Any]:
    import autograd.numpy as anp
    return {"add": anp.add, "mul": anp.multiply, "matmul": anp.matmul, "exp": anp.exp, "tanh": anp.tanh,
            "sigmoid": _autograd_sigmoid(), "relu": lambda x: anp.maximum(x, 0.0), "sum": anp.sum}[name]


OPS: dict[str, tuple[int, Callable[..., Any], Callable[..., Any]]] = {
    "add": (2, lambda a, b, g: (a + b, (g, g)), lambda a, b: a + b),
    "mul": (2, lambda a, b, g: (a * b, (g * b, g * a)), lambda a, b: a * b),
    "matmul": (2, _matmul_floor, lambda a, b: a @ b),
    "exp": (1, _exp_floor, lambda x: x.exp()),
    "tanh": (1, _tanh_floor, lambda x: x.tanh()),
    "sigmoid": (1, _sigmoid_floor, lambda x: x.sigmoid()),
    "relu": (1, lambda x, g: (np.maximum(x, 0), (g * (x > 0),)), lambda x: x.relu()),
    # np.full, not np.broadcast_to: every framework hands its user a materialised gradient, and
    # broadcast_to costs ~7 us a call whatever the size, which would make the floor slow on tiny arrays.
    "sum": (1, lambda x, g: (x.sum(), (np.full(x.shape, g),)), lambda x: x.sum()),
}


def op_inputs(name: str, shape: tuple[int, ...], seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """float64 inputs for op ``name`` and an output gradient of ones."""
    rng = np.random.default_rng(seed)
    arity, _, op = OPS[name]
    inputs = [rng.standard_normal(shape) for _ in range(arity)]
    return inputs, np.ones(op(*[mg.Value(x) for x in inputs]).shape)


def op_floor(name: str, inputs: list[np.ndarray], g: np.ndarray) -> Callable[[], Any]:
    floor = OPS[name][1]
    return lambda: floor(*inputs, g)


def op_microgradx(name: str, inputs: list[np.ndarray], g: np.ndarray) -> Callable[[], Any]:
    fn = OPS[name][2]
    leaves = [mg.Value(x) for x in inputs]

    def run() -> list[Any]:
        fn(*leaves).backward(g)
        grads = [v.grad for v in leaves]
        for v in leaves:
            v.zero_grad()
        return grads
    return run


def op_torch(name: str, inputs: list[np.ndarray], g: np.ndarray) -> Callable[[], Any]:
    torch = _torch()
    fn = OPS[name][2]
    leaves = [torch.tensor(x, requires_grad=True) for x in inputs]
    seed = torch.from_numpy(g)

    def run() -> list[Any]:
        fn(*leaves).backward(seed)
        grads = [t.grad for t in leaves]
        for t in leaves:
            t.grad = None
        return grads
    return run


def op_autograd(name: str, inputs: list[np.ndarray], g: np.ndarray) -> Callable[[], Any]:
    from autograd import make_vjp
    fn = _hips(name)
    packed = make_vjp(lambda args: fn(*args))
    args = tuple(inputs)

    def run() -> Any:
        vjp, _ = packed(args)
        return vjp(g)
    return run


OP_VERSIONS = {"numpy floor": (op_floor, None), "microgradx": (op_microgradx, None),
               "PyTorch eager": (op_torch, "torch"), "HIPS autograd": (op_autograd, "autograd")}


# --------------------------------------------------------------------------------------------------
# 5: a long chain of scalar ops
# --------------------------------------------------------------------------------------------------
# n ops from x = 0.5: alternately y * 0.999 and y + 0.001 (values and gradients stay finite at any n).
# Each version returns d(output)/dx.

def chain_floor(n: int) -> float:
    """Plain Python floats and a hand-kept tape of local derivatives: the floor."""
    y, tape = 0.5, []
    for i in range(n):
        if i % 2:
            y, d = y + 0.001, 1.0
        else:
            y, d = y * 0.999, 0.999
        tape.append(d)
    g = 1.0
    for d in reversed(tape):
        g *= d
    return g


def _chain(y: Any, n: int) -> Any:
    for i in range(n):
        y = y + 0.001 if i % 2 else y * 0.999
    return y


def chain_microgradx(n: int) -> float:
    x = mg.Value(0.5)
    _chain(x, n).backward()
    return float(x.grad)


def chain_torch(n: int) -> float:
    torch = _torch()
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    _chain(x, n).backward()
    return x.grad.item()


def chain_autograd(n: int) -> float:
    from autograd import grad
    return float(grad(lambda x: _chain(x, n))(0.5))


def chain_micrograd(n: int) -> float:
    """Raises RecursionError for deep chains: micrograd's topological sort is recursive."""
    from micrograd.engine import Value
    x = Value(0.5)
    _chain(x, n).backward()
    return x.grad


CHAIN_VERSIONS = {"Python floats (hand tape)": (chain_floor, None), "microgradx": (chain_microgradx, None),
                  "PyTorch eager": (chain_torch, "torch"), "HIPS autograd": (chain_autograd, "autograd"),
                  "micrograd": (chain_micrograd, "micrograd")}


# --------------------------------------------------------------------------------------------------
# 6. LeNet: forward + backward of a small CNN on a batch of MNIST-sized images
# --------------------------------------------------------------------------------------------------

LENET_BATCH = 256


def lenet_batch(x: np.ndarray, y: np.ndarray, n: int = LENET_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images as (n, 1, 28, 28) float32 and their labels as class indices (1 for a 3)."""
    return x[:n].reshape(-1, 1, 28, 28), y[:n, 0].astype(np.int64)


def lenet_init(seed: int = 0) -> list[np.ndarray]:
    """LeNet's weights, float32: conv 5x5x6, conv 5x5x16, then 256-120-84-10; Linear weights (in, out)."""
    net = lenet_microgradx_net(seed)
    return [p.data.copy() for p in net.parameters()]


def lenet_microgradx_net(seed: int = 0) -> Any:
    nn = mg.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, rng=seed), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5, rng=seed + 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(256, 120, rng=seed + 2), nn.ReLU(), nn.Linear(120, 84, rng=seed + 3),
                         nn.ReLU(), nn.Linear(84, 10, rng=seed + 4))


class LenetMicrogradx:
    name = "microgradx"

    def __init__(self, params: list[np.ndarray], xb: np.ndarray, yb: np.ndarray) -> None:
        self.net = lenet_microgradx_net()
        for p, q in zip(self.net.parameters(), params, strict=True):
            p.data[...] = q
        self.xb, self.yb = xb, yb

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        self.net.zero_grad()
        loss = mg.nn.functional.cross_entropy(self.net(self.xb), self.yb)
        loss.backward()
        return loss.item(), [p.grad for p in self.net.parameters()]


class LenetTorch:
    """The same network in PyTorch eager; Linear weights transposed to PyTorch's (out, in) layout."""

    name = "PyTorch eager"

    def __init__(self, params: list[np.ndarray], xb: np.ndarray, yb: np.ndarray) -> None:
        torch = self.torch = _torch()
        self.params = [torch.tensor(p.T.copy() if p.ndim == 2 else p, requires_grad=True) for p in params]
        self.xb, self.yb = torch.from_numpy(xb), torch.from_numpy(yb)

    def loss_and_grads(self) -> tuple[float, list[np.ndarray]]:
        F = self.torch.nn.functional
        c1, b1, c2, b2, *dense = self.params
        for p in self.params:
            p.grad = None
        h = F.max_pool2d(F.relu(F.conv2d(self.xb, c1, b1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, c2, b2)), 2).flatten(1)
        for i in range(0, len(dense), 2):
            h = F.linear(h, dense[i], dense[i + 1])
            if i + 2 < len(dense):
                h = F.relu(h)
        loss = F.cross_entropy(h, self.yb)
        loss.backward()
        return loss.item(), [p.grad.numpy().T if p.ndim == 2 else p.grad.numpy() for p in self.params]


# --------------------------------------------------------------------------------------------------
# 7: function transforms
# --------------------------------------------------------------------------------------------------
# hvp: the Hessian of an MLP's loss times a vector, against one gradient of the same loss (issue 17: at
# most 4x). jacobian: of a 100 -> 100 map, against the hand-derived Jacobian and torch.func.jacrev.
# jvp: of functions of 1000 inputs, by the double-vjp trick against building the Jacobian first (the
# choice docs/transforms.md explains), with torch.func.jvp (true forward mode) beside them.

HVP_SIZES = [100, 90, 10]     # 100*90 + 90 + 90*10 + 10 = 10,000 parameters
HVP_BATCH = 256


def hvp_problem(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[np.ndarray]]:
    """Weights of a 100-90-10 tanh MLP, a batch of inputs, one-hot labels, and a direction per weight."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(HVP_SIZES[:-1], HVP_SIZES[1:], strict=True):
        params += [rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in),
                   rng.standard_normal(fan_out) * 0.1]
    X = rng.standard_normal((HVP_BATCH, HVP_SIZES[0]))
    onehot = np.eye(HVP_SIZES[-1])[rng.integers(0, HVP_SIZES[-1], HVP_BATCH)]
    return params, X, onehot, [rng.standard_normal(p.shape) for p in params]


def hvp_loss(X: Any, onehot: Any, log_softmax: Callable[..., Any],
             tanh: Callable[..., Any]) -> Callable[..., Any]:
    """Cross-entropy of the MLP on the batch, as a function of its four weight arrays."""
    def loss(W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        logits = tanh(X @ W1 + b1) @ W2 + b2
        return -(log_softmax(logits) * onehot).sum() / len(X)
    return loss


def hvp_microgradx(kind: str) -> Callable[[], Any]:
    from microgradx.transforms import hvp
    params, X, onehot, vs = hvp_problem()
    loss = hvp_loss(X, onehot, lambda z: mg.log_softmax(z, axis=-1), mg.tanh)
    nums = tuple(range(len(params)))
    if kind == "grad":
        gradient = mg.grad(loss, nums)
        return lambda: gradient(*params)
    product = hvp(loss, nums)
    return lambda: product(*params, tuple(vs))


def hvp_torch(kind: str) -> Callable[[], Any]:
    torch = _torch()
    params, X, onehot, vs = hvp_problem()
    loss = hvp_loss(torch.from_numpy(X), torch.from_numpy(onehot), lambda z: torch.log_softmax(z, dim=-1),
                    torch.tanh)
    tensors, directions = tuple(map(torch.from_numpy, params)), tuple(map(torch.from_numpy, vs))
    nums = tuple(range(len(params)))
    gradient = torch.func.grad(loss, argnums=nums)
    if kind == "grad":
        return lambda: gradient(*tensors)
    return lambda: torch.func.jvp(lambda *ps: gradient(*ps), tensors, directions)[1]


HVP_VERSIONS = {"microgradx gradient": (lambda: hvp_microgradx("grad"), None),
                "microgradx hvp": (lambda: hvp_microgradx("hvp"), None),
                "PyTorch torch.func.grad": (lambda: hvp_torch("grad"), "torch"),
                "PyTorch hvp (jvp of grad)": (lambda: hvp_torch("hvp"), "torch")}


def jacobian_problem(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W, b and x of the map x -> tanh(W x + b) from R^n to R^n."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal(n) * 0.1, rng.standard_normal(n)


def jacobian_floor() -> Callable[[], Any]:
    W, b, x = jacobian_problem()

    def run() -> np.ndarray:
        y = np.tanh(W @ x + b)
        return (1 - y * y)[:, None] * W      # d tanh(Wx + b)_i / dx_j = (1 - y_i^2) W_ij
    return run


def jacobian_microgradx() -> Callable[[], Any]:
    from microgradx.transforms import jacobian
    W, b, x = jacobian_problem()
    jac = jacobian(lambda x: (W @ x + b).tanh())
    return lambda: jac(x)


def jacobian_torch(mode: str) -> Callable[[], Any]:
    torch = _torch()
    W, b, x = (torch.from_numpy(a) for a in jacobian_problem())
    jac = getattr(torch.func, mode)(lambda x: torch.tanh(W @ x + b))
    return lambda: jac(x)


def jacobian_autograd() -> Callable[[], Any]:
    import autograd.numpy as anp
    from autograd import jacobian
    W, b, x = jacobian_problem()
    jac = jacobian(lambda x: anp.tanh(anp.dot(W, x) + b))
    return lambda: jac(x)


JACOBIAN_VERSIONS = {"numpy floor": (jacobian_floor, None),
                     "microgradx jacobian": (jacobian_microgradx, None),
                     "PyTorch torch.func.jacrev": (lambda: jacobian_torch("jacrev"), "torch"),
                     "PyTorch torch.func.jacfwd": (lambda: jacobian_torch("jacfwd"), "torch"),
                     "HIPS autograd jacobian": (jacobian_autograd, "autograd")}

JVP_INPUTS = 1000


def jvp_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matrix W of the functions below, a point and a tangent, all of 1000 inputs."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((JVP_INPUTS, JVP_INPUTS)) / np.sqrt(JVP_INPUTS)
    return W, rng.standard_normal(JVP_INPUTS), rng.standard_normal(JVP_INPUTS)


def jvp_function(outputs: str, W: Any, tanh: Callable[..., Any]) -> Callable[[Any], Any]:
    """x -> tanh(W x) (``outputs="many"``: 1000 outputs) or x -> sum(tanh(W x)**2) (one output)."""
    if outputs == "many":
        return lambda x: tanh(W @ x)
    return lambda x: (tanh(W @ x) ** 2).sum()


def jvp_floor(outputs: str) -> Callable[[], Any]:
    W, x, t = jvp_problem()

    def run() -> Any:
        y = np.tanh(W @ x)
        pushed = (1 - y * y) * (W @ t)
        return pushed if outputs == "many" else (2 * y * pushed).sum()
    return run


def jvp_microgradx(outputs: str, how: str) -> Callable[[], Any]:
    from microgradx.transforms import jacobian, jvp
    W, x, t = jvp_problem()
    f = jvp_function(outputs, W, mg.tanh)
    if how == "double vjp":
        return lambda: jvp(f, (x,), (t,))[1]
    jac = jacobian(f)
    return lambda: jac(x) @ t


def jvp_torch(outputs: str) -> Callable[[], Any]:
    torch = _torch()
    W, x, t = (torch.from_numpy(a) for a in jvp_problem())
    f = jvp_function(outputs, W, torch.tanh)
    return lambda: torch.func.jvp(f, (x,), (t,))[1]


def jvp_versions(outputs: str) -> dict[str, tuple[Callable[[], Any], str | None]]:
    return {"numpy floor": (lambda: jvp_floor(outputs), None),
            "microgradx jvp (double vjp)": (lambda: jvp_microgradx(outputs, "double vjp"), None),
            "microgradx jacobian @ t": (lambda: jvp_microgradx(outputs, "jacobian"), None),
            "PyTorch torch.func.jvp": (lambda: jvp_torch(outputs), "torch")}
