"""Mutation testing of the engine: do its tests notice when one thing in it changes?

Each mutant is one small change to ``microgradx/engine.py``, ``ops.py`` or ``functional.py`` (a comparison
flipped, an operator swapped, a constant moved, a statement dropped, ...), made in a temporary copy of the
package; the real files are never written. The engine's tests run against each copy with ``-x`` and a small
hypothesis profile: a test that fails kills the mutant, a mutant that every test passes survived. Survivors
are real gaps in the tests unless they are *equivalent* (no program can tell them from the original); those
are listed, each with its reason, in ``scripts/mutants_equivalent.txt``, and do not count in the score.

    python scripts/mutate.py                      # 230 mutants drawn with seed 0, 2 workers
    python scripts/mutate.py -n 20 --seed 3 -j 1  # a quick look
    python scripts/mutate.py --list               # how many mutants each file offers, by kind
    python scripts/mutate.py --only KEY --only KEY2   # just those mutants again (keys as a run prints them)

The score is (killed + timed out) / (mutants - equivalent ones): a mutant that makes the tests hang is
noticed too.

What is never mutated, and why:

* Code that never runs. Annotations (of parameters, of returns, of ``x: T = ...``) in a file with ``from
  __future__ import annotations``, as all three are: they are kept as strings and never evaluated, so no
  test run can see a change in them (a type checker reads them: tests/test_typing.py runs mypy --strict
  on a script that uses the whole API). The same for the branch of an ``if TYPE_CHECKING:`` that is not
  taken at run time, and for dropping an ``if TYPE_CHECKING:`` that has no else.
* Docstrings are neither changed nor dropped, and inside f-strings nothing is: what they hold is prose
  for readers (help(), error messages), not what the engine computes. ``assert`` statements are left
  alone too: they state invariants, not behaviour.
* A change whose syntax tree is the original's (it only adds parentheses) is not drawn.

Everything else is drawn, even where the answer looks obvious (``__slots__``, ``__all__``, a TypeVar);
the survivors among those are judged one by one in mutants_equivalent.txt.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import difflib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "microgradx"
FILES = ("engine.py", "ops.py", "functional.py")
# The quick, pointed tests first: with -x, most mutants die in the first seconds.
TESTS = ("test_engine_mutants.py", "test_engine.py", "test_value_api.py", "test_numpy_ops.py",
         "test_numerics.py", "test_ops.py", "test_fuzz_engine.py",
         "test_viz.py")   # the drawings read the table entries' metadata (symbol, symmetric)
EQUIVALENT = Path(__file__).with_name("mutants_equivalent.txt")

COMPARE_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
ARITHMETIC_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                   ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult,
                   ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.LShift: ast.RShift,
                   ast.RShift: ast.LShift}


@dataclass(frozen=True)
class Mutant:
    file: str        # "engine.py"
    line: int        # where the change starts
    kind: str        # "compare", "arithmetic", "constant", ...
    where: str       # the enclosing function or class, e.g. "Value.backward"
    statement: str   # the first line of the statement it is in (comments dropped), e.g. "x = a + b";
                     # "" when the change is to a whole statement
    before: str      # the source of the node as it was
    after: str       # ... and as the mutant has it
    start: tuple[int, int]   # (line, column) span of the replaced text, lines from 1
    end: tuple[int, int]
    repeat: str = ""         # " (2)" for the second mutant with the same key, ...

    @property
    def key(self) -> str:
        """What names the mutant in the list of equivalent ones: no line numbers, which move with edits, but
        the statement it changes, so that the same change in two places has two keys (a key that two mutants
        still share, such as a statement repeated word for word, ends in " (2)", " (3)"...)."""
        where = f"{self.where} [{self.statement}]" if self.statement else self.where
        return f"{self.file}::{where}: {one_line(self.before)} -> {one_line(self.after)}{self.repeat}"


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- Drawing the mutants -------------------------------------------------------------------------------


def _replacements(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """The one-change variants of a single node, each with its kind."""
    def changed(**fields: object) -> ast.AST:
        new = copy.deepcopy(node)
        for name, value in fields.items():
            setattr(new, name, value)
        return new

    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in COMPARE_FLIP:
                ops = list(node.ops)
                ops[i] = COMPARE_FLIP[type(op)]()
                yield "compare", changed(ops=ops)
    elif isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC_SWAP:
        yield "arithmetic", changed(op=ARITHMETIC_SWAP[type(node.op)]())
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
        yield "not" if isinstance(node.op, ast.Not) else "unary", node.operand
    elif isinstance(node, ast.BoolOp):
        yield "and/or", changed(op=ast.Or() if isinstance(node.op, ast.And) else ast.And())
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield "boolean", changed(value=not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value
        for new in ({0: (1, -1), 1: (0, -1)}.get(value, (value + 1,)) if isinstance(value, int)
                    else {0.0: (1.0,), 1.0: (0.0,)}.get(value, (value * 2,))):
            yield "constant", changed(value=type(value)(new))
    elif isinstance(node, ast.Slice):
        for field in ("lower", "upper"):
            bound = getattr(node, field)
            if bound is not None and not isinstance(bound, ast.Constant):
                yield "slice", changed(**{field: ast.BinOp(bound, ast.Add(), ast.Constant(1))})
    elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield "return None", changed(value=ast.Constant(None))


def _type_checking(test: ast.expr) -> bool | None:
    """What an ``if`` test that reads typing.TYPE_CHECKING is at run time (False, or True for its
    negation); None for any other test."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _type_checking(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.Name | ast.Attribute) and \
            (test.id if isinstance(test, ast.Name) else test.attr) == "TYPE_CHECKING":
        return False
    return None


def _never_run(node: ast.AST, postponed: bool) -> set[str]:
    """The fields of node that the interpreter never runs: annotations, when ``from __future__ import
    annotations`` postpones them (kept as strings, never evaluated), and the branch of an
    ``if TYPE_CHECKING:`` not taken."""
    if postponed and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return {"returns"}
    if postponed and isinstance(node, ast.arg | ast.AnnAssign):
        return {"annotation"}
    if isinstance(node, ast.If):
        taken = _type_checking(node.test)
        return set() if taken is None else {"orelse" if taken else "body"}
    return set()


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and \
        isinstance(node.value.value, str)


class _Collector(ast.NodeVisitor):
    def __init__(self, file: str, source: str) -> None:
        self.file, self.lines, self.scope = file, source.splitlines(keepends=True), []
        self.statements: list[ast.stmt] = []
        self.default: str | None = None    # "name=value" while inside a parameter's default value
        self.found: list[Mutant] = []
        self.postponed = any(isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__" and
                             any(alias.name == "annotations" for alias in stmt.names)
                             for stmt in ast.parse(source).body)

    def _add(self, kind: str, old: ast.AST, new_text: str, is_statement: bool = False,
             statement: str | None = None) -> None:
        before = self._segment(old)
        if not is_statement and not isinstance(old, ast.Slice):
            new_text = f"({new_text})"   # keeps the precedence of the surroundings whatever the change
        if statement is None:   # a statement dropped or changed whole needs no context: it is `before`
            statement = "" if isinstance(old, ast.stmt) else self.default or _first_line(self.statements[-1])
        self.found.append(Mutant(self.file, old.lineno, kind, ".".join(self.scope) or "<module>",
                                 statement, before, new_text, (old.lineno, old.col_offset),
                                 (old.end_lineno, old.end_col_offset)))

    def _segment(self, node: ast.AST) -> str:
        lines = self.lines[node.lineno - 1:node.end_lineno]
        if len(lines) == 1:
            return lines[0][node.col_offset:node.end_col_offset]
        return lines[0][node.col_offset:] + "".join(lines[1:-1]) + lines[-1][:node.end_col_offset]

    def _visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        if not isinstance(node, ast.ClassDef):
            self._defaults(node.args)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope  # noqa: N815

    def _defaults(self, args: ast.arguments) -> None:
        # A default of None becomes 0 (a default that is a number or a flag is a constant, drawn anyway).
        for arg, default in _with_defaults(args):
            if isinstance(default, ast.Constant) and default.value is None:
                self._add("default", default, "0", statement=f"{arg.arg}=None")

    def visit_arguments(self, node: ast.arguments) -> None:
        for arg in [*node.posonlyargs, *node.args, node.vararg, *node.kwonlyargs, node.kwarg]:
            if arg is not None:
                self.visit(arg)
        for arg, default in _with_defaults(node):
            self.default = f"{arg.arg}={one_line(ast.unparse(default))}"
            self.visit(default)
            self.default = None

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        pass   # inside an f-string only messages change

    def visit_Assert(self, node: ast.Assert) -> None:
        pass

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt):
            self.statements.append(node)
        super().visit(node)
        if isinstance(node, ast.stmt):
            self.statements.pop()

    def generic_visit(self, node: ast.AST) -> None:
        for kind, new in _replacements(node):
            if isinstance(node, ast.Return):
                self._add(kind, node, ast.unparse(new), is_statement=True)
            else:
                self._add(kind, node, ast.unparse(new))
        unrun = _never_run(node, self.postponed)
        for field in ("body", "orelse", "finalbody"):
            if field in unrun or not isinstance(getattr(node, field, None), list):
                continue
            for stmt in getattr(node, field):
                self._maybe_drop(stmt, getattr(node, field))
        for field, value in ast.iter_fields(node):
            if field in unrun:
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child)

    def _maybe_drop(self, stmt: ast.stmt, body: list[ast.stmt]) -> None:
        droppable = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Return, ast.If,
                     ast.For, ast.Delete)
        if not isinstance(stmt, droppable) or _is_docstring(stmt) or len(body) < 2:
            return
        if isinstance(stmt, ast.If) and _type_checking(stmt.test) is False and not stmt.orelse:
            return   # an `if TYPE_CHECKING:` with no else: nothing in it runs, so dropping it changes nothing
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            return
        last = self.lines[stmt.end_lineno - 1][stmt.end_col_offset:].strip()
        first = self.lines[stmt.lineno - 1][:stmt.col_offset].strip()
        if first or (last and not last.startswith("#")):
            return   # shares its line with another statement
        self._add("drop statement", stmt, "pass", is_statement=True)


def _with_defaults(args: ast.arguments) -> list[tuple[ast.arg, ast.expr]]:
    """The parameters that have a default, each with it."""
    positional = [*args.posonlyargs, *args.args]
    return [*zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True),
            *((arg, d) for arg, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None)]


def _first_line(statement: ast.stmt) -> str:
    """A statement's first line, without decorators or comments ("def f(x):", "if a > b:", "y = x + 1")."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        statement = copy.copy(statement)
        statement.decorator_list = []
    return one_line(ast.unparse(statement).splitlines()[0])


def mutants_of(file: str) -> list[Mutant]:
    source = (PACKAGE / file).read_text()
    collector = _Collector(file, source)
    collector.visit(ast.parse(source))
    unique = list({(m.start, m.end, m.after): m for m in collector.found}.values())
    seen: Counter[str] = Counter()
    for i, m in enumerate(unique):
        seen[m.key] += 1
        if seen[m.key] > 1:
            unique[i] = dataclasses.replace(m, repeat=f" ({seen[m.key]})")
    return unique


def apply(m: Mutant, source: str) -> str:
    """The file with the mutant's change."""
    lines = source.splitlines(keepends=True)
    (l0, c0), (l1, c1) = m.start, m.end
    head = "".join(lines[:l0 - 1]) + lines[l0 - 1][:c0]
    tail = lines[l1 - 1][c1:] + "".join(lines[l1:])
    return head + m.after + tail


def draw(offered: list[Mutant], n: int, seed: int, sources: dict[str, str]) -> list[Mutant]:
    """n mutants at random, skipping any that does not compile or that compiles to the original."""
    original = {f: ast.dump(ast.parse(s)) for f, s in sources.items()}
    drawn = []
    for m in random.Random(seed).sample(offered, len(offered)):
        try:
            if ast.dump(ast.parse(apply(m, sources[m.file]))) != original[m.file]:
                drawn.append(m)
        except SyntaxError:
            pass
        if len(drawn) == n:
            break
    return drawn


# --- Running them --------------------------------------------------------------------------------------


def run_tests(package_dir: Path, tests: Path, timeout: float) -> tuple[str, float, str]:
    """The tests run on the package in package_dir: ("killed" | "survived" | "timeout", seconds, output)."""
    env = dict(os.environ, PYTHONPATH=str(package_dir), HYPOTHESIS_PROFILE="mutation",
               PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-o", "addopts=", "--no-header", *[str(tests / t) for t in TESTS if (tests / t).exists()]]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=package_dir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return "timeout", time.monotonic() - start, ""
    tail = "\n".join(output.strip().splitlines()[-3:])
    if process.returncode not in (0, 1):
        # 2-5: the run broke (an import error is a kill too: the mutant made the package unusable)
        return "killed", time.monotonic() - start, tail
    return ("survived" if process.returncode == 0 else "killed"), time.monotonic() - start, tail


def copy_package(into: Path) -> Path:
    shutil.copytree(PACKAGE, into / "microgradx", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def diff_of(m: Mutant, source: str, mutated: str) -> str:
    return "".join(difflib.unified_diff(source.splitlines(keepends=True), mutated.splitlines(keepends=True),
                                        f"a/microgradx/{m.file}", f"b/microgradx/{m.file}", n=1))


def equivalent_keys() -> dict[str, str]:
    """The equivalent mutants' keys, each with its reason (lines 'key  # reason'; '#' lines are comments)."""
    keys = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, reason = line.partition("  # ")
                keys[key.strip()] = reason.strip()
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=230, help="mutants to draw (default 230)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: 3x the unmutated run, plus 20)")
    parser.add_argument("--list", action="store_true", help="count the mutants on offer, then stop")
    parser.add_argument("--only", action="append", default=None,
                        help="only mutants whose key contains this text (repeat it for several)")
    args = parser.parse_args(argv)

    sources = {f: (PACKAGE / f).read_text() for f in FILES}
    offered = [m for f in FILES for m in mutants_of(f)]
    if args.only:
        offered = [m for m in offered if any(text in m.key for text in args.only)]
    if args.list:
        for (file, kind), count in sorted(Counter((m.file, m.kind) for m in offered).items()):
            print(f"{file:15} {kind:15} {count:5}")
        print(f"{len(offered)} mutants on offer")
        return 0
    drawn = draw(offered, args.n, args.seed, sources)
    equivalent = equivalent_keys()
    every_key = {m.key for f in FILES for m in mutants_of(f)}
    if stale := sorted(k for k in equivalent if k not in every_key):
        # The code they named has changed: look at those mutants again and update their keys.
        print(f"{len(stale)} keys in {EQUIVALENT.name} name no mutant on offer now:", *stale, sep="\n  ")

    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        # The tests as they are now, so that editing them during a long run changes nothing in it.
        tests = Path(shutil.copytree(REPO / "tests", Path(tmp) / "tests",
                                     ignore=shutil.ignore_patterns("__pycache__", ".hypothesis")))
        outcome, seconds, tail = run_tests(copy_package(Path(tmp) / "clean"), tests, timeout=1800)
        if outcome != "survived":
            print(f"the tests fail on the unmutated package; fix that first:\n{tail}")
            return 2
        timeout = args.timeout or 3 * seconds + 20
        print(f"unmutated run: {seconds:.0f} s; per-mutant timeout {timeout:.0f} s; "
              f"{len(drawn)} of {len(offered)} mutants, seed {args.seed}, {args.jobs} workers", flush=True)

        def test_one(i_m: tuple[int, Mutant]) -> tuple[Mutant, str, str]:
            i, m = i_m
            root = copy_package(Path(tmp) / f"m{i}")
            mutated = apply(m, sources[m.file])
            (root / "microgradx" / m.file).write_text(mutated)
            outcome, took, _ = run_tests(root, tests, timeout)
            shutil.rmtree(root)
            print(f"[{i + 1:3}/{len(drawn)}] {outcome:8} {took:5.0f}s {m.file}:{m.line} {m.kind}: "
                  f"{one_line(m.before)[:50]} -> {one_line(m.after)[:50]}", flush=True)
            return m, outcome, diff_of(m, sources[m.file], mutated)

        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(test_one, enumerate(drawn)))

    counts = Counter(outcome for _, outcome, _ in results)
    survivors = [(m, d) for m, outcome, d in results if outcome == "survived"]
    gaps = [(m, d) for m, d in survivors if m.key not in equivalent]
    n_equivalent = len(survivors) - len(gaps)
    print("\nSurvivors (E = listed as equivalent):")
    for m, d in sorted(survivors, key=lambda md: (md[0].file, md[0].line)):
        mark = "E" if m.key in equivalent else " "
        print(f"{mark} {m.file}:{m.line} [{m.kind}] {m.key}\n{d}")
    detected = counts["killed"] + counts["timeout"]
    scored = len(results) - n_equivalent
    print(f"killed {counts['killed']}, timed out {counts['timeout']}, survived {counts['survived']} "
          f"({n_equivalent} equivalent, {len(gaps)} gaps)")
    print(f"score: {detected}/{scored} non-equivalent mutants detected = {detected / max(scored, 1):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
