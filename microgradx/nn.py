"""Neural-network building blocks: ``Module`` and a few layers made of engine ops.

A ``Module`` is a plain Python object whose attributes hold its parameters (``Value`` leaves) and its
submodules; :meth:`Module.parameters` finds them by walking the attributes, so a layer needs no
registration code::

    class Affine(Module):
        def __init__(self):
            self.w = Value(np.ones((3, 2), dtype=np.float32))
            self.b = Value(np.zeros(2, dtype=np.float32))

        def forward(self, x):
            return x @ self.w + self.b

Convolution, pooling, activations and the losses are functions in ``microgradx.nn.functional``
(:mod:`microgradx.nn_functional`); the layers below that wrap them hold only their settings and weights.

Weights are initialised from a numpy ``Generator`` the caller can seed (``rng=0`` or
``rng=np.random.default_rng(0)``), so two models built with the same seed are identical bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from . import nn_functional as functional
from .engine import Value
from .errors import ArgumentError, CheckpointError

__all__ = ["Module", "Linear", "ReLU", "Sigmoid", "Tanh", "Sequential", "MLP", "Conv2d", "MaxPool2d",
           "Flatten", "Dropout", "functional"]

RngLike = np.random.Generator | int | None


class Module:
    """Base class of layers and models: finds its parameters, and calling it runs :meth:`forward`.

    Parameters are the ``Value`` objects held in the module's attributes, directly or inside lists,
    tuples, dicts and submodules, at any depth. They are found in attribute order (the order in which
    ``__init__`` assigned them), each once, so ``parameters()`` is deterministic and an optimizer built on
    it updates every weight exactly once even when a layer is shared.
    """

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- parameters ----------------------------------------------------------------------------

    def named_parameters(self) -> list[tuple[str, Value]]:
        """``(name, parameter)`` pairs, names dotted by path (``"layers.0.weight"``); each Value once."""
        found: list[tuple[str, Value]] = []
        seen: set[int] = set()
        # An explicit stack (not recursion) so that deep nesting cannot hit the recursion limit; children
        # are pushed in reverse so that they come off in attribute order. The ids of containers and
        # modules are remembered too, so a structure that refers back to itself is walked once.
        stack: list[tuple[str, Any]] = [("", self)]
        while stack:
            name, obj = stack.pop()
            if isinstance(obj, Value):
                if id(obj) not in seen:
                    seen.add(id(obj))
                    found.append((name, obj))
                continue
            if id(obj) in seen:
                continue
            if isinstance(obj, Module):
                seen.add(id(obj))
                children = list(vars(obj).items())
            elif isinstance(obj, Mapping):
                seen.add(id(obj))
                children = [(str(k), v) for k, v in obj.items()]
            elif isinstance(obj, list | tuple):
                seen.add(id(obj))
                children = [(str(i), v) for i, v in enumerate(obj)]
            else:
                continue
            prefix = f"{name}." if name else ""
            stack.extend((prefix + key, child) for key, child in reversed(children))
        return found

    def parameters(self) -> list[Value]:
        """Every parameter, in a deterministic order, each exactly once."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget the accumulated gradients of every parameter (call it before each backward)."""
        for p in self.parameters():
            p.zero_grad()

    def num_parameters(self) -> int:
        """The number of scalar weights in all parameters together."""
        return sum(int(p.size) for p in self.parameters())

    def modules(self) -> Iterator[Module]:
        """This module and every submodule below it (depth first, each once)."""
        seen: set[int] = set()
        stack: list[Any] = [self]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, Module):
                yield obj
                stack.extend(reversed(list(vars(obj).values())))
            elif isinstance(obj, Mapping):
                stack.extend(reversed(list(obj.values())))
            elif isinstance(obj, list | tuple):
                stack.extend(reversed(obj))

    def train(self, mode: bool = True) -> Module:
        """Set the ``training`` flag on this module and all submodules (``Dropout`` drops only while True)."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Same as ``train(False)``."""
        return self.train(False)

    # ---- saving and loading --------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's array, by name: changing the model later leaves it untouched."""
        return {name: np.array(p.data, copy=True) for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays from ``state`` into the parameters, in place.

        The names and shapes must match this model's exactly; nothing is changed unless they all do.
        Arrays are cast to each parameter's dtype (a float32 model stays float32).

        Raises:
            CheckpointError: a name is missing or unexpected, a shape differs, or an array is not numbers.
        """
        params = dict(self.named_parameters())
        missing = [n for n in params if n not in state]
        unexpected = [n for n in state if n not in params]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected {', '.join(map(str, unexpected))}")
            raise CheckpointError(
                f"parameters do not match {type(self).__name__} ({'; '.join(parts)}); "
                f"expected {_describe_shapes(params)}"
            )
        arrays = {}
        for name, p in params.items():
            arr = np.asarray(state[name])
            if arr.dtype.kind not in "fiu":
                raise CheckpointError(f"parameter {name} holds {arr.dtype} data, expected numbers")
            if arr.shape != p.shape:
                raise CheckpointError(f"parameter {name} has shape {arr.shape}, expected {p.shape}")
            arrays[name] = arr
        # Checked all before writing any, so a failed load leaves the model as it was.
        for name, p in params.items():
            if isinstance(p.data, np.ndarray):
                np.copyto(p.data, arrays[name], casting="unsafe")
            else:  # a 0-d parameter holds a numpy scalar, which cannot be written into
                p.data = p.data.dtype.type(arrays[name])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _describe_shapes(params: Mapping[str, Value]) -> str:
    return ", ".join(f"{n} {tuple(p.shape)}" for n, p in params.items()) or "no parameters"


# --------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------

class Linear(Module):
    """``x @ weight + bias``, with ``weight`` of shape ``(n_in, n_out)`` and ``bias`` of shape ``(n_out,)``.

    The weight is stored input-major (unlike PyTorch's ``(n_out, n_in)``) so that the forward pass is the
    book's ``xb @ weights + bias`` with no transpose.

    Initialisation:

    - ``init_std=None`` (default): weight and bias uniform in ``[-1/sqrt(n_in), 1/sqrt(n_in)]``, the
      scale PyTorch's ``nn.Linear`` ends up with: each output's variance is about a third of the
      inputs' (the variance of uniform(-a, a) is a**2 / 3), the same for any width.
    - ``init_std=s``: weight and bias normal with mean 0 and standard deviation ``s``: fastbook's
      ``init_params(size, std=1.0)`` for its linear 3-vs-7 model is ``init_std=1.0``.

    ``rng`` is a seed or a ``np.random.Generator``; None draws fresh entropy (not reproducible).
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True, *, rng: RngLike = None,
                 init_std: float | None = None, dtype: Any = np.float32) -> None:
        for name, n in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
                raise ArgumentError(f"Linear: {name} must be a positive integer, got {n!r}")
        if init_std is not None and not (np.isfinite(init_std) and init_std > 0):
            raise ArgumentError(f"Linear: init_std must be a positive number, got {init_std!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        gen = np.random.default_rng(rng)
        dtype = np.dtype(dtype)

        def draw(shape: tuple[int, ...]) -> np.ndarray:
            if init_std is None:
                bound = 1.0 / np.sqrt(self.n_in)
                values = gen.uniform(-bound, bound, size=shape)
            else:
                values = gen.standard_normal(shape) * init_std
            return values.astype(dtype)   # drawn in float64, as numpy does, then stored in the model dtype

        self.weight = Value(draw((self.n_in, self.n_out)), label="weight")
        self.bias = Value(draw((self.n_out,)), label="bias") if bias else None

    def forward(self, x: Any) -> Value:
        out = x @ self.weight
        return out + self.bias if self.bias is not None else out

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out}, bias={self.bias is not None})"


class ReLU(Module):
    """``max(x, 0)`` elementwise."""

    def forward(self, x: Value) -> Value:
        return x.relu()


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise."""

    def forward(self, x: Value) -> Value:
        return x.sigmoid()


class Tanh(Module):
    """``tanh(x)`` elementwise."""

    def forward(self, x: Value) -> Value:
        return x.tanh()


class Sequential(Module):
    """Modules (or any callables) applied one after the other; parameters are named ``layers.<i>.*``."""

    def __init__(self, *layers: Any) -> None:
        self.layers = list(layers)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Any:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"{type(self).__name__}({inner}\n)"


class MLP(Sequential):
    """A multi-layer perceptron: ``Linear`` layers of the given sizes with an activation between them.

    ``MLP(784, [30, 1])`` is fastbook's ``simple_net``: Linear(784, 30), ReLU, Linear(30, 1). The last
    layer has no activation: it returns logits, which the losses turn into probabilities themselves.
    All layers draw their initial weights from one generator, so ``rng`` seeds the whole network.
    """

    def __init__(self, n_in: int, sizes: Sequence[int], *, rng: RngLike = None,
                 activation: type[Module] = ReLU, init_std: float | None = None,
                 dtype: Any = np.float32) -> None:
        sizes = list(sizes)
        if not sizes:
            raise ArgumentError("MLP: sizes must name at least one layer (the output size)")
        gen = np.random.default_rng(rng)
        layers: list[Module] = []
        for i, (a, b) in enumerate(zip([n_in, *sizes[:-1]], sizes, strict=True)):
            if i:
                layers.append(activation())
            layers.append(Linear(a, b, rng=gen, init_std=init_std, dtype=dtype))
        super().__init__(*layers)
        self.sizes = [int(n_in), *map(int, sizes)]


# --------------------------------------------------------------------------------------------------
# Convolutional layers
# --------------------------------------------------------------------------------------------------

class Conv2d(Module):
    """``functional.conv2d`` with a ``weight`` of shape ``(C_out, C_in / groups, kh, kw)`` and a ``bias``.

    Weight and bias start uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in = C_in / groups *
    kh * kw``: the scale of ``Linear`` and of PyTorch's ``nn.Conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True, *,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
                raise ArgumentError(f"Conv2d: {name} must be a positive integer, got {n!r}")
        if in_channels % groups or out_channels % groups:
            raise ArgumentError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                                f"both be divisible by groups ({groups})")
        kh, kw = functional._pair("Conv2d", "kernel_size", kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)
        gen = np.random.default_rng(rng)
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / np.sqrt(fan_in)
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight = Value(gen.uniform(-bound, bound, size=shape).astype(dtype), label="weight")
        self.bias = (Value(gen.uniform(-bound, bound, size=(out_channels,)).astype(dtype), label="bias")
                     if bias else None)

    def forward(self, x: Any) -> Value:
        return functional.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                 dilation=self.dilation, groups=self.groups)

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None})")


class MaxPool2d(Module):
    """``functional.max_pool2d``: the maximum of each window (stride defaults to the kernel size)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1) -> None:
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation

    def forward(self, x: Any) -> Value:
        return functional.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class Flatten(Module):
    """Merges axes ``start_dim`` to ``end_dim`` into one: by default all but the batch axis."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Value:
        return functional.flatten(x, self.start_dim, self.end_dim)

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


class Dropout(Module):
    """``functional.dropout`` while ``training`` (see :meth:`Module.train`); the identity after ``eval()``.

    ``rng`` seeds the generator that draws every mask of this layer, so a seeded run repeats exactly.
    """

    def __init__(self, p: float = 0.5, *, rng: RngLike = None) -> None:
        if not 0 <= p <= 1:
            raise ArgumentError(f"Dropout: p must be in [0, 1], got {p!r}")
        self.p = p
        self.rng = np.random.default_rng(rng)

    def forward(self, x: Any) -> Value:
        return functional.dropout(x, self.p, training=self.training, rng=self.rng)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
