"""Tests of mg.Learner: the chapter's closing cells, the recorder, callbacks, checkpoints and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import microgradx as mg
from microgradx.data import load_bundled_sample
from microgradx.errors import ArgumentError, CheckpointError, ShapeError, TrainingDivergedError
from microgradx.learner import EVENTS, LrFindResult, loss_and_grads
from microgradx.nn_functional import cross_entropy


def sample_arrays():
    d = load_bundled_sample()
    x = d.train_images.reshape(-1, 784).astype(np.float32) / 255
    xv = d.valid_images.reshape(-1, 784).astype(np.float32) / 255
    y, yv = ((labels == 3).astype(np.float32)[:, None] for labels in (d.train_labels, d.valid_labels))
    return x, y, xv, yv


def chapter_dls(seed=0, bs=256):
    x, y, xv, yv = sample_arrays()
    return mg.DataLoaders(mg.DataLoader(list(zip(x, y, strict=True)), batch_size=bs, shuffle=True, seed=seed),
                          mg.DataLoader((xv, yv), batch_size=bs))


def linear_learner(seed=0, **kw):
    kw.setdefault("progress", False)
    return mg.Learner(chapter_dls(seed), mg.nn.Linear(784, 1, rng=seed), loss_func=mg.mnist_loss,
                      metrics=mg.accuracy, **kw)


def test_the_chapters_closing_cell_learns_on_the_sample(capsys):
    learn = mg.Learner(chapter_dls(), mg.nn.Linear(28 * 28, 1, rng=0), opt_func=mg.optim.SGD,
                       loss_func=mg.mnist_loss, metrics=mg.accuracy)
    learn.fit(10, lr=1)
    values = learn.recorder.values
    assert len(values) == 10 and all(len(row) == 3 for row in values)
    assert values[-1][0] < values[0][0] and values[-1][2] > 0.9      # train loss falls; accuracy is high
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy"] and len(out) == 11
    assert out[-1].split()[0] == "10" and float(out[-1].split()[3]) == pytest.approx(values[-1][2], abs=1e-4)


def test_a_seeded_fit_repeats_exactly_and_valid_figures_match_a_direct_evaluation():
    a, b = linear_learner(), linear_learner()
    a.fit(3, lr=1)
    b.fit(3, lr=1)
    assert a.recorder.values == b.recorder.values
    _, _, xv, yv = sample_arrays()
    with mg.no_grad():
        out = a.model(xv)
        assert a.recorder.values[-1][1] == pytest.approx(float(mg.mnist_loss(out, yv).data), rel=1e-5)
        assert a.recorder.values[-1][2] == pytest.approx(mg.accuracy(out, yv))


def test_fit_continues_its_epoch_count_and_takes_a_new_lr():
    learn = linear_learner()
    learn.fit(2, lr=1)
    learn.fit(3, lr=0.5)
    assert learn.epoch == 3 and len(learn.recorder.values) == 3 and learn.opt.lr == 0.5


def test_callbacks_see_every_event_in_order():
    seen = []

    class Spy(mg.Callback):
        def __getattribute__(self, name):
            if name in EVENTS:
                seen.append(name)
            return object.__getattribute__(self, name)

    learn = linear_learner(cbs=[Spy()])
    learn.fit(2)
    n = len(learn.dls.train)
    epoch = ["before_epoch", *["before_batch", "after_batch"] * n, "after_epoch"]
    assert seen == ["before_fit", *epoch, *epoch, "after_fit"]


def test_early_stopping_stops_when_the_monitored_figure_gets_worse():
    class Worsening(mg.Callback):
        # After the recorder's row (so epoch counts this one): the valid loss rises from epoch 3 on.
        order = -5

        def after_epoch(self):
            self.learn.recorder.values[-1][1] = [0.5, 0.4, 0.45, 0.46, 0.47, 0.48][self.learn.epoch - 1]

    stop = mg.EarlyStoppingCallback(monitor="valid_loss", patience=2)
    learn = linear_learner(cbs=[Worsening(), stop])
    learn.fit(6)
    assert learn.epoch == 4 and stop.stopped_epoch == 4 and len(learn.recorder.values) == 4
    with pytest.raises(ArgumentError, match="no column 'nope'"):
        linear_learner(cbs=[mg.EarlyStoppingCallback(monitor="nope")]).fit(1)


def test_save_and_load_round_trip(tmp_path):
    learn = linear_learner()
    learn.fit(2, lr=1)
    learn.save(tmp_path / "m.safetensors")
    other = linear_learner(seed=5)
    other.load(tmp_path / "m.safetensors")
    assert other.epoch == 2 and other.recorder.values == learn.recorder.values
    np.testing.assert_array_equal(other.model.weight.data, learn.model.weight.data)
    wrong = mg.Learner(chapter_dls(), mg.nn.Linear(784, 3), mg.mnist_loss, progress=False)
    with pytest.raises(CheckpointError):
        wrong.load(tmp_path / "m.safetensors")


def test_save_each_epoch_leaves_the_last_complete_epoch(tmp_path):
    path = tmp_path / "run" / "ckpt.safetensors"

    class Interrupt(mg.Callback):
        order = 30

        def after_batch(self):
            if self.learn.epoch == 2:
                raise KeyboardInterrupt

    learn = linear_learner(cbs=[mg.SaveEachEpochCallback(path), Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        learn.fit(5, lr=1)
    resumed = linear_learner()
    resumed.load(path)
    assert resumed.epoch == 2


class RateSpy(mg.Callback):
    """Records the rate each batch trains with (after the schedule has set it)."""

    order = 0

    def __init__(self):
        self.rates = []

    def before_batch(self):
        self.rates.append(self.learn.opt.lr)


@pytest.mark.parametrize("name, expected", [("cosine", lambda p: 0.5 * (1 + np.cos(np.pi * p))),
                                            ("linear", lambda p: 1 - p), ("constant", lambda p: 1.0)])
def test_the_lr_schedule_sets_each_batchs_rate_from_the_fraction_done(name, expected):
    spy = RateSpy()
    learn = linear_learner(lr=0.8, cbs=[mg.LRScheduleCallback(name), spy])
    learn.fit(3)
    n = len(learn.dls.train)
    done = np.arange(3 * n) / (3 * n)                   # batch b of epoch e: (e + b / n) / 3
    np.testing.assert_allclose(spy.rates, [0.8 * expected(p) for p in done], rtol=1e-12)
    assert learn.opt.lr == 0.8 and learn.lr == 0.8      # the base rate is back after the fit


def test_a_schedule_given_as_a_function_and_a_fit_beyond_its_span():
    spy = RateSpy()
    learn = linear_learner(lr=1.0, cbs=[mg.LRScheduleCallback(lambda pct: 0.1 if pct >= 0.5 else 1.0,
                                                              n_epoch=4), spy])
    learn.fit(2)
    learn.fit(4)                     # the same schedule, continued: n_epoch fixes its span
    n = len(learn.dls.train)
    assert spy.rates == [1.0] * (2 * n) + [0.1] * (2 * n)
    with pytest.raises(ArgumentError, match="spans 4 epochs, but fit asks for 5"):
        learn.fit(5)


def test_a_scheduled_run_split_over_fits_and_a_checkpoint_ends_as_one_fit(tmp_path):
    straight = linear_learner(lr=1.0, cbs=[mg.LRScheduleCallback("cosine")])
    straight.fit(4)
    path = tmp_path / "ckpt.safetensors"
    first = linear_learner(lr=1.0, cbs=[mg.LRScheduleCallback("cosine", n_epoch=4),
                                        mg.SaveEachEpochCallback(path)])
    first.fit(2)
    resumed = linear_learner(lr=1.0, cbs=[mg.LRScheduleCallback("cosine", n_epoch=4)])
    resumed.load(path)
    assert resumed.lr == 1.0                            # the checkpoint holds the base rate
    for _ in range(2):
        iter(resumed.dls.train)                         # the shuffles of the two epochs done
    resumed.fit(4)
    np.testing.assert_array_equal(resumed.model.weight.data, straight.model.weight.data)
    assert resumed.recorder.values == straight.recorder.values
    unscheduled = linear_learner(lr=1.0)
    unscheduled.fit(4)
    assert unscheduled.recorder.values != straight.recorder.values


def test_bad_schedules_are_refused_by_name():
    with pytest.raises(ArgumentError, match="unknown schedule 'cos'.*cosine, linear"):
        mg.LRScheduleCallback("cos")
    with pytest.raises(ArgumentError, match="n_epoch must be a positive integer"):
        mg.LRScheduleCallback("cosine", n_epoch=0)
    with pytest.raises(ArgumentError, match="name or a function"):
        mg.LRScheduleCallback(3)
    learn = linear_learner(cbs=[mg.LRScheduleCallback(lambda pct: 1 - 2 * pct)])
    with pytest.raises(ArgumentError, match=r"<lambda>\(0\.5\) gave 0\.0"):
        learn.fit(2)


def test_predict_gives_the_class_and_probabilities():
    learn = linear_learner()
    learn.fit(2, lr=1)
    _, _, xv, yv = sample_arrays()
    cls, probs = learn.predict(xv[0])
    assert cls == int(yv[0, 0]) and probs.shape == (2,) and probs.sum() == pytest.approx(1)
    ten = mg.Learner(chapter_dls(), mg.nn.Linear(784, 10, rng=0), cross_entropy, progress=False)
    ten.dls.vocab = list("abcdefghij")
    cls, probs = ten.predict(xv[0])
    assert cls == "abcdefghij"[int(np.argmax(probs))] and probs.shape == (10,)


def test_a_model_whose_output_does_not_fit_the_loss_is_named_in_shapes():
    with pytest.raises(ShapeError, match=r"output of shape \(256, 3\).*targets of shape \(256, 1\)"):
        mg.Learner(chapter_dls(), mg.nn.Linear(784, 3), mg.mnist_loss, progress=False).fit(1)
    # cross-entropy's class indices against a model of one output
    x, _, xv, _ = sample_arrays()
    y, yv = np.arange(len(x)) % 10, np.arange(len(xv)) % 10
    dls = mg.DataLoaders(mg.DataLoader((x, y), batch_size=64), mg.DataLoader((xv, yv), batch_size=64))
    with pytest.raises(ShapeError, match=r"output of shape \(64, 1\).*cross_entropy"):
        mg.Learner(dls, mg.nn.Linear(784, 1), cross_entropy, progress=False).fit(1)


def test_divergence_is_refused_and_the_epoch_not_counted():
    learn = mg.Learner(chapter_dls(), mg.nn.Linear(784, 1, rng=0), mg.losses.mse_loss, lr=1e6, progress=False)
    with pytest.raises(TrainingDivergedError, match="epoch 1"):
        learn.fit(3)
    assert learn.epoch == 0 and learn.recorder.values == []


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="DataLoaders"):
        mg.Learner([1], mg.nn.Linear(2, 1), mg.mnist_loss)
    with pytest.raises(ArgumentError, match="lr"):
        mg.Learner(chapter_dls(), mg.nn.Linear(784, 1), mg.mnist_loss, lr=-1)
    with pytest.raises(ArgumentError, match="Callback"):
        mg.Learner(chapter_dls(), mg.nn.Linear(784, 1), mg.mnist_loss, cbs=[object()])


def test_lr_find_and_plots_are_figures_and_leave_the_weights_alone():
    from matplotlib.figure import Figure

    learn = linear_learner()
    before = learn.model.weight.data.copy()
    result = learn.lr_find(num_it=30)
    np.testing.assert_array_equal(learn.model.weight.data, before)
    assert isinstance(result, LrFindResult) and len(result.lrs) == len(result.losses) <= 30
    assert result.lrs == sorted(result.lrs) and result.lrs[0] == pytest.approx(1e-7)
    assert isinstance(result.plot(), Figure)
    learn.fit(1)
    assert isinstance(learn.recorder.plot_loss(), Figure)
    assert len(learn.recorder.losses) == len(learn.dls.train)


def test_the_step_function_is_one_replaceable_place():
    calls = []

    def counting(model, loss_func, xb, yb):
        calls.append(len(xb))
        return loss_and_grads(model, loss_func, xb, yb)

    learn = linear_learner()
    learn.step_fn = counting
    learn.fit(1)
    assert sum(calls) == len(learn.dls.train.x)


# ---- the chapter's closing cells on the full 3-vs-7 data ----

def _full_chapter_dls(folder):
    from microgradx.data import load_mnist_3_7

    data = load_mnist_3_7(folder)
    x, xv = (im.reshape(-1, 784).astype(np.float32) / 255 for im in (data.train_images, data.valid_images))
    y, yv = ((labels == 3).astype(np.float32)[:, None] for labels in (data.train_labels, data.valid_labels))
    dl = mg.DataLoader(list(zip(x, y, strict=True)), batch_size=256)      # fastbook: no shuffle
    valid_dl = mg.DataLoader(list(zip(xv, yv, strict=True)), batch_size=256)
    return mg.DataLoaders(dl, valid_dl)


@pytest.mark.data
def test_the_chapters_linear_learner_lands_near_its_figure(full_idx_folder):
    # fastbook: Learner(dls, nn.Linear(28*28,1), opt_func=SGD, loss_func=mnist_loss,
    #                   metrics=batch_accuracy).fit(10, lr=lr) with lr = 1. gives 0.9676 (its last row).
    learn = mg.Learner(_full_chapter_dls(full_idx_folder), mg.nn.Linear(28 * 28, 1, rng=0),
                       opt_func=mg.optim.SGD, loss_func=mg.mnist_loss, metrics=mg.accuracy, progress=False)
    learn.fit(10, lr=1)
    assert abs(learn.recorder.values[-1][2] - 0.9676) < 0.01


@pytest.mark.data
def test_the_chapters_simple_net_lands_near_its_figure(full_idx_folder):
    # fastbook: simple_net = nn.Sequential(nn.Linear(28*28,30), nn.ReLU(), nn.Linear(30,1));
    # Learner(...).fit(40, 0.1) ends at 0.982826.
    nn = mg.nn
    simple_net = nn.Sequential(nn.Linear(28 * 28, 30, rng=0), nn.ReLU(), nn.Linear(30, 1, rng=1))
    learn = mg.Learner(_full_chapter_dls(full_idx_folder), simple_net, opt_func=mg.optim.SGD,
                       loss_func=mg.mnist_loss, metrics=mg.accuracy, progress=False)
    learn.fit(40, 0.1)
    assert abs(learn.recorder.values[-1][2] - 0.9828) < 0.006
