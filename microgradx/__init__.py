"""microgradx: a small, readable reverse-mode automatic differentiation engine on numpy.

>>> import microgradx as mg
>>> x = mg.Value(3.0)
>>> y = x**2
>>> y.backward()
>>> print(x.grad)
6.0
"""

from . import errors, functional, nn, ops, optim
from .autodiff import grad, value_and_grad
from .engine import (
    Value,
    as_value,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
)
from .errors import (
    AnomalyError,
    ArgumentError,
    AxisError,
    CheckpointError,
    DataError,
    DTypeError,
    GradientError,
    MicrogradxError,
    ShapeError,
    TrainingDivergedError,
)
from .functional import expand_dims, flatten, log_softmax, logsumexp, softmax, softplus, squeeze, var
from .ops import (
    abs,
    add,
    astype,
    broadcast_to,
    clip,
    concatenate,
    divide,
    exp,
    getitem,
    identity,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    multiply,
    negative,
    power,
    relu,
    reshape,
    scatter_add,
    sigmoid,
    sqrt,
    stack,
    subtract,
    sum,
    tanh,
    transpose,
    where,
)
from .threads import get_num_threads, num_threads, set_num_threads
from .viz import GraphvizNotFoundError, draw_graph, render_graph

__version__ = "0.1.0"

__all__ = [
    "Value", "as_value", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "grad",
    "value_and_grad",
    "MicrogradxError", "ShapeError", "DTypeError", "AxisError", "GradientError", "AnomalyError",
    "DataError", "CheckpointError", "TrainingDivergedError", "ArgumentError",
    "add", "subtract", "multiply", "divide", "negative", "power", "matmul", "exp", "log", "sqrt", "abs",
    "tanh", "sigmoid", "relu", "clip", "maximum", "where", "sum", "max", "min", "reshape", "transpose",
    "broadcast_to", "concatenate", "stack", "mean", "astype", "identity", "getitem", "scatter_add",
    "var", "logsumexp", "softmax", "log_softmax", "softplus", "flatten", "squeeze", "expand_dims",
    "draw_graph", "render_graph", "GraphvizNotFoundError",
    "set_num_threads", "get_num_threads", "num_threads",
    "errors", "functional", "nn", "ops", "optim",
]
