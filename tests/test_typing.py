"""Type checkers see Value whole: a user script touching every operator and method passes mypy --strict."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import microgradx as mg
from microgradx import engine

SCRIPT = Path(__file__).parent / "typing" / "user_script.py"

# Operators the script spells as operators, by the method that implements them.
OPERATORS = {"__add__": "+", "__radd__": "1 +", "__sub__": " - ", "__rsub__": "1 -", "__mul__": " * ",
             "__rmul__": "2 *", "__truediv__": " / ", "__rtruediv__": "1.0 /", "__pow__": "**",
             "__rpow__": "2 **", "__matmul__": " @ ", "__rmatmul__": "np.ones((2, 3)) @",
             "__neg__": "-x", "__pos__": "+y", "__abs__": "abs(", "__getitem__": "[0]",
             "__lt__": " < ", "__le__": " <= ", "__gt__": " > ", "__ge__": " >= ", "__eq__": " == ",
             "__ne__": " != ", "__iadd__": "+=", "__isub__": "-=", "__imul__": "*=", "__itruediv__": "/=",
             "__float__": "float(", "__int__": "int(", "__bool__": "bool(", "__len__": "len(",
             "__iter__": "for p in", "__repr__": "repr("}


def test_the_script_uses_every_public_method_and_operator_of_value():
    text = SCRIPT.read_text()
    hints = set(engine._SPELLINGS)       # PyTorch names that raise AttributeError: not part of the API
    body = {n for n in vars(mg.Value) if (not n.startswith("_") or n in OPERATORS) and n not in hints}
    missing = sorted(n for n in body
                     if (OPERATORS[n] not in text if n in OPERATORS else not re.search(rf"\.{n}\b", text)))
    assert not missing, f"tests/typing/user_script.py does not use Value.{', Value.'.join(missing)}"


def test_user_code_type_checks_clean_under_mypy_strict():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", "/dev/null", str(SCRIPT)],
        capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_the_script_runs():
    # The script is real code, not only types: it runs and differentiates.
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
