"""Which of numpy's functions microgradx differentiates, which have nothing to differentiate, and why.

    python scripts/numpy_coverage.py        # the three lists, as markdown

The docs build (docs/hooks/generate.py, marker ``<!-- generated: numpy-coverage -->``) turns the same lists
into the "numpy coverage" page. The list of numpy's functions is read from the installed numpy, so a
function numpy adds shows up as "not yet" until it is sorted here or given a table entry.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import microgradx as mg  # noqa: E402
from microgradx import functional, linalg, ops  # noqa: E402

# numpy's other names for functions microgradx has under its main name.
ALIASES = {
    "absolute": "abs", "acos": "arccos", "acosh": "arccosh", "asin": "arcsin", "asinh": "arcsinh",
    "atan": "arctan", "atanh": "arctanh", "atan2": "arctan2", "around": "round", "remainder": "mod",
    "concat": "concatenate", "permute_dims": "transpose", "pow": "power", "true_divide": "divide",
    "amax": "max", "amin": "min", "fabs": "abs", "row_stack": "vstack", "cumulative_sum": "cumsum",
    "cumulative_prod": "cumprod",
}

# Functions with nothing to differentiate, by the reason why.
NO_DERIVATIVE = {
    "returns booleans (a test or a comparison), which have no derivative": [
        "all", "allclose", "any", "array_equal", "array_equiv", "equal", "greater", "greater_equal",
        "isclose", "iscomplex", "isfinite", "isin", "isinf", "isnan", "isneginf", "isposinf", "isreal",
        "less", "less_equal", "logical_and", "logical_not", "logical_or", "logical_xor", "not_equal",
        "signbit", "isnat", "is_busday"],
    "returns integers (positions, indices or counts)": [
        "argmax", "argmin", "argpartition", "argsort", "argwhere", "bincount", "count_nonzero",
        "diag_indices", "diag_indices_from", "digitize", "flatnonzero", "indices", "ix_", "lexsort",
        "mask_indices", "nanargmax", "nanargmin", "nonzero", "ravel_multi_index", "searchsorted",
        "tril_indices", "tril_indices_from", "triu_indices", "triu_indices_from", "unravel_index",
        "histogram", "histogram2d", "histogramdd", "histogram_bin_edges", "busday_count", "busday_offset"],
    "makes a new array from sizes, ranges or files: no input to differentiate": [
        "arange", "bartlett", "blackman", "empty", "empty_like", "eye", "frombuffer", "fromfile",
        "fromfunction", "fromiter", "fromregex", "fromstring", "full", "full_like", "genfromtxt",
        "geomspace", "hamming", "hanning", "identity", "kaiser", "linspace", "load", "loadtxt", "logspace",
        "meshgrid", "ones", "ones_like", "tri", "zeros", "zeros_like"],
    "integers and bits only": [
        "bitwise_and", "bitwise_count", "bitwise_invert", "bitwise_left_shift", "bitwise_not", "bitwise_or",
        "bitwise_right_shift", "bitwise_xor", "gcd", "invert", "lcm", "left_shift", "packbits",
        "right_shift", "unpackbits"],
    "complex numbers: a Value holds real numbers only": [
        "angle", "conj", "conjugate", "imag", "real", "real_if_close", "sort_complex", "iscomplexobj",
        "isrealobj"],
    "the output's size depends on the values (sets, uniques): piecewise constant where defined": [
        "intersect1d", "setdiff1d", "setxor1d", "trim_zeros", "union1d", "unique", "unique_all",
        "unique_counts", "unique_inverse", "unique_values", "extract", "compress"],
    "writes into an existing array in place: a graph records new values, not edits": [
        "copyto", "fill_diagonal", "place", "put", "put_along_axis", "putmask"],
    "conversion, introspection, printing or files: no numbers computed": [
        "array", "asanyarray", "asarray", "asarray_chkfinite", "ascontiguousarray", "asfortranarray",
        "asmatrix", "astype", "bmat", "copy", "require", "array2string", "array_repr", "array_str",
        "base_repr", "binary_repr", "format_float_positional", "format_float_scientific",
        "datetime_as_string", "datetime_data", "can_cast", "common_type", "isdtype", "isfortran", "isscalar",
        "issubdtype", "iterable", "min_scalar_type", "mintypecode", "promote_types", "result_type",
        "typename", "ndim", "shape", "size", "shares_memory", "may_share_memory", "broadcast_shapes",
        "einsum_path", "nested_iters", "from_dlpack", "frompyfunc", "get_include", "get_printoptions",
        "getbufsize", "geterr", "geterrcall", "info", "printoptions", "save", "savetxt", "savez",
        "savez_compressed", "set_printoptions", "setbufsize", "seterr", "seterrcall", "show_config",
        "show_runtime", "test", "apply_along_axis", "apply_over_axes", "piecewise", "vectorize"],
}


def microgradx_names() -> dict[str, str]:
    """Every differentiable function microgradx offers under a numpy name -> where to find it."""
    found: dict[str, str] = {}
    for name in linalg.__all__:
        found[f"linalg.{name}"] = f"mg.linalg.{name}"
    for name in functional.__all__:
        if name not in functional.NO_GRADIENT:
            found[name] = f"mg.{name}" if hasattr(mg, name) else f"microgradx.functional.{name}"
    for name in dir(ops):
        obj = getattr(ops, name)
        if name.startswith("_") or name in found:
            continue
        if isinstance(obj, ops.Primitive):
            if obj.forward.__module__ != ops.__name__:      # mg.linalg's, listed above
                continue
        elif not (inspect.isfunction(obj) and obj.__module__ == ops.__name__):
            continue
        found[name] = f"mg.{name}" if hasattr(mg, name) else f"microgradx.ops.{name}"
    return found


def numpy_names() -> list[str]:
    """numpy's public functions (and np.linalg's, as ``linalg.<name>``)."""
    def public(module: object) -> list[str]:
        return [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
                and not isinstance(getattr(module, n), type)]
    return sorted(public(np)) + [f"linalg.{n}" for n in sorted(public(np.linalg))]


def coverage() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(differentiable: numpy name, microgradx name), (no derivative: name, why), and the rest, not yet."""
    ours = microgradx_names()
    why = {name: reason for reason, names in NO_DERIVATIVE.items() for name in names}
    done, none, missing = [], [], []
    for name in numpy_names():
        if name in ours:
            done.append((name, ours[name]))
        elif name in ALIASES and ALIASES[name] in ours:
            done.append((name, f"{ours[ALIASES[name]]} (numpy's other name for it)"))
        elif name in why:
            none.append((name, why[name] + (f"; as numpy arrays: mg.{name}" if name in functional.NO_GRADIENT
                                            else "")))
        else:
            missing.append(name)
    return done, none, missing


def markdown() -> str:
    done, none, missing = coverage()
    total = len(done) + len(none) + len(missing)
    lines = [f"Of numpy {np.__version__}'s {total} public functions (np.linalg's included), microgradx "
             f"differentiates {len(done)}; {len(none)} have no derivative to take; {len(missing)} are not "
             "there yet.", "", "## Differentiable", "", "| numpy | microgradx |", "|---|---|"]
    lines += [f"| `np.{n}` | `{m}` |" for n, m in done]
    lines += ["", "## Nothing to differentiate", "", "| numpy | why |", "|---|---|"]
    lines += [f"| `np.{n}` | {w} |" for n, w in none]
    lines += ["", "## Not yet", "", "No table entry or composite yet; each would be a new one (see "
              "[defining an op](defining-an-op.md)): " + ", ".join(f"`np.{n}`" for n in missing) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown())
