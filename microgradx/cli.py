"""The command line: ``microgradx train | predict | lr-find | graph`` (also ``python -m microgradx``).

Each subcommand is one :class:`Command`: a function that adds its options to a parser and a function that
runs it. Adding a subcommand is writing those two functions and one ``Command(...)`` line in ``COMMANDS``.

Exit codes: 0 success; 2 bad input (a usage error, an ``--out`` that cannot be written, or data, images
or weights that cannot be used: one line on stderr, ``microgradx: error: <file>: <problem>``, and no new
output files left behind; a run that diverges keeps its last good checkpoint); 1 the system failed a file
operation mid-run (a full disk): one line, the files written so far complete; 130 interrupted (Ctrl-C),
after saying where the last complete checkpoint is; 141 the reader of the output went away
(``microgradx train | head``), quietly. Anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from .errors import CheckpointError, MicrogradxError
from .threads import num_threads

PROG = "microgradx"
DEFAULT_OUT = "runs"


class UsageError(MicrogradxError):
    """A command line that does not parse (an unknown option, a bad number)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a command, with what the user needs to know to carry on."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage and calls sys.exit(2); we want one line and a return code.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


# --------------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------------

def _integer_from(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = minimum - 1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return n
    parse.__name__ = what.replace(" ", "_")   # argparse names the type in its messages
    return parse


_positive_int = _integer_from(1, "a positive integer")
_seed = _integer_from(0, "a non-negative integer")


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return x


def _add_data_and_model(p: argparse.ArgumentParser, model_default: str | None = "linear") -> None:
    from .train import MODELS

    p.add_argument("--data", metavar="PATH",
                   help="a folder in fastai's MNIST_SAMPLE layout (train/3, train/7, valid/3, valid/7 "
                        "of PNGs) or of MNIST IDX files; default: the sample bundled with microgradx")
    p.add_argument("--sample", choices=["3-7", "digits"], default="3-7",
                   help="without --data, the bundled sample to use: 1,000 3s and 7s (default) or 1,000 "
                        "digits of all ten classes")
    p.add_argument("--model", choices=list(MODELS), default=model_default,
                   help="; ".join(f"{s.name}: {s.description}, lr {s.lr:g}, {s.epochs} epochs"
                                  for s in MODELS.values())
                   + (f" (default: {model_default})" if model_default else ""))


def _progress(total: int, desc: str, quiet: bool) -> Any:
    from tqdm import tqdm  # lazily: only commands that train need it

    # On stderr, so stdout holds only the results; off when stderr is not a terminal (logs, pipes, CI).
    return tqdm(total=total, desc=desc, unit="batch", file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty())


def _say(line: str) -> None:
    """Print a line of results to stdout without tearing the progress bar on stderr."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)


def _out_dir(text: str) -> Path:
    """``--out`` as a Path, checked before any work: a run must not train for an hour and then find out
    it cannot save. The folder itself is made only when there is something to write."""
    out = Path(text).expanduser()
    new = _new_folders(out)
    existing = new[-1].parent if new else out      # the nearest part of the path that exists already
    if not existing.is_dir():
        raise MicrogradxError(f"{existing}: exists and is not a folder; --out must name a folder")
    if not (os.access(existing, os.W_OK | os.X_OK) and _can_create_files_in(existing)):
        raise MicrogradxError(f"{out}: cannot write there ({existing} is read-only or not ours); "
                              "choose another --out")
    return out


def _can_create_files_in(folder: Path) -> bool:
    """Whether a file can really be made in ``folder``. os.access alone says yes to root everywhere, even
    on a read-only mount or in /proc; creating (and at once removing) an empty file asks the system."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{PROG}-probe-"):
            return True
    except OSError:
        return False


def _new_folders(out: Path) -> list[Path]:
    """The folders ``out.mkdir(parents=True)`` is about to make, deepest first (a dangling symlink
    counts as existing: it is in the way)."""
    new = []
    while not out.exists() and not out.is_symlink():
        new.append(out)
        out = out.parent
    return new


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a command made (deepest first) as long as they are still empty."""
    for folder in folders:
        if not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()


# --------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------

def _training_data(args: argparse.Namespace) -> Any:
    from .data import load_bundled_digits, load_for_training

    if args.data is None and args.sample == "digits":
        return load_bundled_digits()
    return load_for_training(args.data)


def _train_args(p: argparse.ArgumentParser) -> None:
    from .learner import SCHEDULES

    _add_data_and_model(p, model_default=None)
    p.add_argument("--epochs", type=_positive_int, help="epochs in total (default: the model's)")
    p.add_argument("--lr", type=_positive_float, help="learning rate (default: the model's)")
    p.add_argument("--batch-size", type=_positive_int, help="default: the model's")
    p.add_argument("--schedule", choices=list(SCHEDULES),
                   help="the learning rate over the run: constant, or from --lr down to 0 along a cosine or "
                        "a line, set before every batch (default: the model's)")
    p.add_argument("--seed", type=_seed, help="decides the initial weights and the shuffling (default: 0)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the checkpoint, curves.png and metrics.json (default: {DEFAULT_OUT})")
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoint is in --out, up to --epochs in total")
    p.add_argument("--no-compile", action="store_true",
                   help="run every step eagerly instead of replaying a trace of it (mg.compile): slower, "
                        "the same results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _train(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .train import (
        CHECKPOINT_NAME,
        CURVES_NAME,
        METRICS_NAME,
        TrainConfig,
        Trainer,
        pixel_similarity_accuracy,
        plot_history,
        prepare,
        write_json,
    )

    out = _out_dir(args.out)
    path = out / CHECKPOINT_NAME
    data = _training_data(args)
    dataset = prepare(data)
    if args.resume:
        if not path.is_file():
            old = out / "checkpoint.npz"
            if old.is_file():
                load_checkpoint(old)      # refused, with what to do about the old format
            raise CheckpointError(f"{path}: no checkpoint to resume (train without --resume first)")
        trainer = Trainer.resume(path, dataset, epochs=args.epochs)
        _check_same_settings(path, trainer.config, args)
        trainer.config = replace(trainer.config, compile=not args.no_compile)
    else:
        model = args.model or "linear"
        trainer = Trainer(TrainConfig.for_model(model, epochs=args.epochs, lr=args.lr,
                                                batch_size=args.batch_size, seed=args.seed,
                                                classes=dataset.classes, schedule=args.schedule,
                                                compile=not args.no_compile), dataset)
        if path.exists():
            print(f"note: starting afresh; {path} from an earlier run will be replaced (--resume continues "
                  "it instead)", file=sys.stderr)
    config, spec = trainer.config, trainer.spec
    baseline = pixel_similarity_accuracy(data)

    print(f"data: {dataset.source}")
    loss_name = trainer.learner.loss_func.__name__
    momentum = f" momentum {spec.momentum:g}" if spec.momentum else ""
    schedule = f" ({config.schedule} to 0)" if config.schedule != "constant" else ""
    print(f"model: {spec.description}, {trainer.model.num_parameters()} parameters; {loss_name}, "
          f"SGD{momentum} lr {config.lr:g}{schedule}, batch size {config.batch_size}, seed {config.seed}")
    if args.resume:
        print(f"resuming {path} at epoch {trainer.epoch} of {config.epochs}")
    means = ("nearer the mean 3 or the mean 7" if dataset.vocab == ("3", "7")
             else f"the nearest of the {dataset.classes} mean images")
    print(f"baseline (pixel similarity: {means}): valid accuracy {baseline:.4f}")
    print(f"{'epoch':>5}  {'train loss':>10}  {'valid loss':>10}  {'valid acc':>9}")

    def row(h: Any) -> str:
        return f"{h.epoch:>5}  {h.train_loss:>10.4f}  {h.valid_loss:>10.4f}  {h.valid_accuracy:>9.4f}"

    for h in trainer.history:       # the epochs a resumed run already has, so the table is whole
        print(row(h))
    sys.stdout.flush()

    new_folders = _new_folders(out)
    out.mkdir(parents=True, exist_ok=True)   # only now: bad input above leaves no folder behind
    _remove_stale_temp_files(out, (CHECKPOINT_NAME, CURVES_NAME, METRICS_NAME))
    saved = trainer.epoch if args.resume else None
    start = time.perf_counter()
    todo = max(config.epochs - trainer.epoch, 0)
    bar = _progress(todo * len(trainer.loader), f"epoch {trainer.epoch + 1}/{config.epochs}", args.quiet)

    def on_epoch(h: Any) -> None:
        nonlocal saved
        saved = h.epoch
        bar.set_description(f"epoch {min(h.epoch + 1, config.epochs)}/{config.epochs}")
        _say(row(h))

    try:
        with bar:
            trainer.fit(out, on_epoch=on_epoch, on_batch=lambda: bar.update())
    except (KeyboardInterrupt, MicrogradxError) as e:
        _remove_if_empty(new_folders)   # stopped before the first checkpoint: leave nothing behind
        if isinstance(e, MicrogradxError):
            raise
        where = (f"{path} (epoch {saved}); continue with --resume" if saved
                 else "none (interrupted during the first epoch)")
        raise Interrupted(f"interrupted; last complete checkpoint: {where}") from None
    seconds = time.perf_counter() - start

    if todo == 0:
        print(f"nothing to do: {path} already holds {trainer.epoch} epochs (ask for more with --epochs)")
    final = trainer.history[-1]
    title = f"{spec.description}: lr {config.lr:g}, batch {config.batch_size}, seed {config.seed}"
    plot_history(trainer.history, out / CURVES_NAME, baseline=baseline, title=title)
    write_json(out / METRICS_NAME, {
        "config": asdict(config),
        "model": spec.architecture,
        "classes": list(dataset.vocab),
        "parameters": trainer.model.num_parameters(),
        "data": {"source": dataset.source, "fingerprint": dataset.fingerprint},
        "baseline_valid_accuracy": baseline,
        "final": asdict(final),
        "history": [asdict(h) for h in trainer.history],
        "checkpoint": CHECKPOINT_NAME,
    })
    print(f"valid accuracy {final.valid_accuracy:.4f} after {final.epoch} epochs "
          f"(baseline {baseline:.4f})")
    print(f"wrote {path}, {out / CURVES_NAME}, {out / METRICS_NAME}")
    # Wall time varies run to run: on stderr, so that stdout is the same for the same seed, bit for bit.
    if todo:
        print(f"trained {todo} epochs in {seconds:.2f} s ({1000 * seconds / todo:.1f} ms per epoch)",
              file=sys.stderr)
    return 0


def _remove_stale_temp_files(out: Path, names: Sequence[str]) -> None:
    """Delete temporary files of ours that a killed run (kill -9, power loss) left in ``out``."""
    for name in names:
        # The pattern of checkpoint.atomic_write's temporary names: ".<name>.<random>.tmp".
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _check_same_settings(path: Path, config: Any, args: argparse.Namespace) -> None:
    """On --resume, options given explicitly must agree with the checkpoint's run (except --epochs)."""
    given = {"model": args.model, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
             "schedule": args.schedule}
    for name, value in given.items():
        if value is not None and value != getattr(config, name):
            option = "--" + name.replace("_", "-")
            raise CheckpointError(
                f"{path}: was trained with {option} {getattr(config, name)}, not {value}; drop {option} "
                "to resume it, or train afresh without --resume"
            )


# --------------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------------

def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, metavar="FILE", help="a checkpoint written by train")
    from .train import MODELS

    p.add_argument("--model", choices=list(MODELS),
                   help="fail unless the weights are of this model (default: whichever they are)")
    p.add_argument("--examples", action="store_true",
                   help="classify the real digits shipped with microgradx (four 3s and four 7s)")
    p.add_argument("images", nargs="*", metavar="IMAGE.png",
                   help="PNGs of one digit each; best 28x28 grey, a light digit on black as in MNIST. Others "
                        "are converted as fastai would (to grey, resized keeping the aspect, a dark digit on "
                        "light inverted), and the output says so")


def _predict(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .data import example_digits, read_digit, to_features
    from .train import load_model, predict_proba

    if not args.images and not args.examples:
        raise UsageError("give the PNGs to classify, or --examples for the digits shipped with microgradx")
    paths = [Path(p) for p in args.images]
    examples = example_digits() if args.examples else []
    model, _ = load_model(args.weights, expect=args.model)
    # Every image is read before anything is printed: a bad file fails the command with one line.
    read = [read_digit(p) for p in paths + examples]
    probs = predict_proba(model, to_features(np.stack([pixels for pixels, _ in read])))
    vocab = load_checkpoint(args.weights).extra.get("vocab", ["3", "7"])
    if examples:
        print(f"examples: {len(examples)} digits in {examples[0].parent}; each name begins with the answer")
    right = 0
    for i, (path, (_, notes), p) in enumerate(zip(paths + examples, read, probs, strict=True)):
        if np.ndim(p) == 0:       # the chapter's model: the probability of the first class (a 3)
            digit, p_digit = (vocab[0], p) if p >= 0.5 else (vocab[1], 1 - p)
        else:
            digit, p_digit = vocab[int(np.argmax(p))], float(np.max(p))
        name = str(path) if i < len(paths) else path.name
        print(f"{name}: {digit} (p={p_digit:.2f})" + (f"  [{'; '.join(notes)}]" if notes else ""))
        if i >= len(paths):
            right += path.name.startswith(f"{digit}-")
    if examples:
        print(f"examples right: {right} of {len(examples)}")
    return 0


# --------------------------------------------------------------------------------------------------
# lr-find
# --------------------------------------------------------------------------------------------------

def _lr_find_args(p: argparse.ArgumentParser) -> None:
    _add_data_and_model(p)
    p.add_argument("--steps", type=_positive_int, default=100, help="batches trained at each rate (100)")
    p.add_argument("--min-lr", type=_positive_float, default=1e-4, help="lowest rate tried (1e-4)")
    p.add_argument("--max-lr", type=_positive_float, default=100.0, help="highest rate tried (100)")
    p.add_argument("--num", type=_positive_int, default=19,
                   help="rates tried, spaced evenly in log scale (19: three per decade)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="default: 256")
    p.add_argument("--seed", type=_seed, default=0, help="decides the initial weights and the batches (0)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for lr_find.png ({DEFAULT_OUT})")
    p.add_argument("--no-compile", action="store_true",
                   help="run every step eagerly instead of replaying a trace of it (mg.compile): slower, "
                        "the same results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _lr_find(args: argparse.Namespace) -> int:
    from .train import LR_FIND_NAME, lr_find, model_spec, plot_lr_find, prepare

    if args.min_lr >= args.max_lr:
        raise UsageError(f"--min-lr {args.min_lr:g} must be below --max-lr {args.max_lr:g}")
    out = _out_dir(args.out)
    dataset = prepare(_training_data(args))
    lrs = np.geomspace(args.min_lr, args.max_lr, args.num) if args.num > 1 else [args.min_lr]
    spec = model_spec(args.model, dataset.classes)
    print(f"data: {dataset.source}")
    print(f"lr-find: {spec.description}; a fresh copy of the same seeded model (seed {args.seed}) trained "
          f"{args.steps} steps of batch {args.batch_size} at each rate, on the same batches")
    with _progress(len(lrs) * args.steps, "lr-find", args.quiet) as bar:
        result = lr_find(dataset, args.model, lrs=lrs, steps=args.steps, batch_size=args.batch_size,
                         seed=args.seed, on_step=lambda: bar.update(), compile=not args.no_compile)
    print(f"{'lr':>10}  {'valid loss':>10}")
    print(f"{'(start)':>10}  {result.initial_loss:>10.4f}")
    lo, hi = result.suggested or (np.inf, np.inf)
    for lr, loss in zip(result.lrs, result.losses, strict=True):
        note = ("too small" if lr in result.too_small else "too large" if lr in result.too_large
                else "suggested" if lo <= lr <= hi else "")
        print(f"{lr:>10.3g}  {loss:>10.4f}  {note}".rstrip())
    if result.suggested is None:
        print("no rate lowered the loss: try more --steps, or lower rates")
    else:
        print(f"suggested: lr {lo:.3g} to {hi:.3g} (lowest valid loss at {result.best_lr:.3g}; "
              f"the {spec.name} model's default is {spec.lr:g})")
    print(f"too small (slow: under half the best improvement): {_rates(result.too_small)}")
    print(f"too large (bounced, diverged or saturated: under half the best improvement): "
          f"{_rates(result.too_large)}")
    out.mkdir(parents=True, exist_ok=True)
    plot_lr_find(result, out / LR_FIND_NAME, title=f"lr-find: {spec.description}")
    print(f"wrote {out / LR_FIND_NAME}")
    return 0


def _rates(lrs: Sequence[float]) -> str:
    return ", ".join(f"{lr:.3g}" for lr in lrs) or "none"


# --------------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------------

def _graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", metavar="FILE",
                   help="a checkpoint written by train (default: the one in --out, or else each one in the "
                        "folders inside it, as `make train` leaves runs/linear and runs/mlp)")
    p.add_argument("--data", metavar="PATH", help="where the batch of images comes from (default: bundled)")
    p.add_argument("--batch", type=_positive_int, default=4, help="images in the drawn batch (4)")
    p.add_argument("--format", choices=["svg", "png", "dot"], default="svg",
                   help="svg and png need Graphviz's dot program; dot is the graph's source text (svg)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the drawings ({DEFAULT_OUT})")


def _graph(args: argparse.Namespace) -> int:
    from .data import load_mnist_3_7, to_features, to_targets
    from .losses import mnist_loss
    from .nn_functional import cross_entropy
    from .train import CHECKPOINT_NAME, load_model
    from .viz import GraphvizNotFoundError, example_scalar_neuron, render_graph

    out = _out_dir(args.out)
    # Each model's drawing goes beside its checkpoint when it was found in --out's folders.
    runs = [(Path(args.weights), out)] if args.weights else _runs_in(out, CHECKPOINT_NAME)
    models = [(load_model(weights), folder) for weights, folder in runs]
    data = load_mnist_3_7(args.data)
    n = min(args.batch, len(data.valid_labels))
    # A few 3s and a few 7s (the valid split holds the 3s first), so both targets appear in the drawing.
    rows = np.r_[np.arange(n - n // 2), len(data.valid_labels) - 1 - np.arange(n // 2)]
    x, y = to_features(data.valid_images[rows]), to_targets(data.valid_labels[rows])
    new_folders = _new_folders(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for (model, spec), folder in models:
            # A ten-digit model takes the same 3s and 7s, their digits as class indices.
            loss_func, targets = (mnist_loss, y) if spec.sizes[-1] == 1 else \
                (cross_entropy, data.valid_labels[rows].astype(np.int64))
            loss = loss_func(model(x), targets)
            loss.label = loss_func.__name__
            loss.backward()
            written.append(render_graph(loss, folder / f"graph_{spec.name}.{args.format}",
                                        modules={spec.name: model}, grad_flow=True,
                                        title=f"{spec.description}: {loss.label} on {n} valid images"))
        written.append(render_graph(example_scalar_neuron(), out / f"graph_neuron.{args.format}",
                                    title="a neuron on scalars: o = tanh(x1*w1 + x2*w2 + b)"))
    except GraphvizNotFoundError as e:
        _remove_if_empty(new_folders)       # nothing drawn: leave nothing behind
        raise GraphvizNotFoundError(f"{e} Here: {PROG} graph --format dot.") from None
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _runs_in(out: Path, name: str) -> list[tuple[Path, Path]]:
    """(checkpoint, its folder): the one in ``out``, or else each one in the folders directly inside it."""
    if (out / name).is_file():
        return [(out / name, out)]
    found = sorted((d / name, d) for d in (out.iterdir() if out.is_dir() else ()) if (d / name).is_file())
    if not found:
        raise CheckpointError(f"{out / name}: no such file, nor one in the folders inside {out}; train first "
                              f"(make train writes runs/linear and runs/mlp) or pass --weights")
    return found


# --------------------------------------------------------------------------------------------------
# The table of subcommands, and main
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = [
    Command("train", "train the 3-vs-7 classifier; print its curves; save weights and plots",
            _train_args, _train),
    Command("predict", "say whether each PNG is a 3 or a 7, with the probability", _predict_args, _predict),
    Command("lr-find", "train briefly at a sweep of learning rates and plot loss against rate",
            _lr_find_args, _lr_find),
    Command("graph", "draw the computation graph of a trained model on a few images, and of a neuron",
            _graph_args, _graph),
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="microgradx: a small autodiff engine, and fastbook's 3-vs-7 "
                     "classifier trained with it.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.add_argument("--threads", type=_positive_int, metavar="N",
                       help="BLAS threads for numpy's matrix products (default: chosen by their size: one "
                            "for this command's small matrices)")
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        with num_threads(args.threads):
            return args.run(args)
    except SystemExit as e:    # --help and --version exit through argparse
        return e.code if isinstance(e.code, int) else 0
    except MicrogradxError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"{PROG}: {e if isinstance(e, Interrupted) else 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141                     # 128 + SIGPIPE, as a shell reports a command killed by it
    except OSError as e:               # the disk filled up, a folder became read-only mid-run...
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail again on the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):    # stdout replaced by something without a file
        pass
