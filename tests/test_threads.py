"""BLAS threads: chosen by the size of the work, overridable, limited only for microgradx's own calls."""

from __future__ import annotations

import pytest
from threadpoolctl import ThreadpoolController

from microgradx.cli import main
from microgradx.data import load_mnist_3_7
from microgradx.errors import ArgumentError
from microgradx.threads import MULTITHREAD_WORK, get_num_threads, num_threads, set_num_threads, threads_for
from microgradx.train import TrainConfig, Trainer, evaluate, prepare

CONTROLLER = ThreadpoolController()


def blas_threads() -> int:
    return max(lib.num_threads for lib in CONTROLLER.select(user_api="blas").lib_controllers)


@pytest.fixture
def two_threads():
    """BLAS at two threads for the test (whatever the machine or CI set), so that a limit to one shows."""
    if not CONTROLLER.select(user_api="blas").lib_controllers:
        pytest.skip("numpy's BLAS is not one threadpoolctl can control")
    with CONTROLLER.limit(limits=2, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def dataset():
    return prepare(load_mnist_3_7())


def test_small_work_runs_on_one_thread_and_large_work_keeps_the_librarys_count(two_threads):
    with threads_for(MULTITHREAD_WORK - 1):
        assert blas_threads() == 1
    assert blas_threads() == 2      # restored after the block
    with threads_for(MULTITHREAD_WORK):
        assert blas_threads() == 2


def test_the_users_setting_overrides_the_choice_and_comes_back_after_the_block(two_threads):
    assert get_num_threads() is None
    with num_threads(2):
        assert get_num_threads() == 2
        with threads_for(10):
            assert blas_threads() == 2
    with num_threads(1):
        assert blas_threads() == 1      # also the user's own numpy code in the block
        with threads_for(MULTITHREAD_WORK * 10):
            assert blas_threads() == 1
    assert get_num_threads() is None and blas_threads() == 2
    set_num_threads(2)
    try:
        with threads_for(10):
            assert blas_threads() == 2
    finally:
        set_num_threads(None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_count_is_refused(bad):
    with pytest.raises(ArgumentError, match="positive integer"):
        set_num_threads(bad)
    with pytest.raises(ArgumentError, match="positive integer"), num_threads(bad):
        pass
    assert get_num_threads() is None


def test_training_and_evaluation_run_on_one_thread_by_default(two_threads, dataset):
    seen = []
    trainer = Trainer(TrainConfig.for_model("mlp", epochs=1), dataset)
    trainer.train_epoch(on_batch=lambda: seen.append(blas_threads()))
    assert seen and set(seen) == {1}
    assert blas_threads() == 2      # nothing left behind for the user's code

    import microgradx.train as train_module

    real = train_module.mnist_loss
    inside = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "mnist_loss", lambda *a: (inside.append(blas_threads()), real(*a))[1])
        evaluate(trainer.model, dataset.x_valid, dataset.y_valid)
    assert inside == [1]


def test_threads_option_of_the_command_line(two_threads, tmp_path, capsys, monkeypatch):
    import microgradx.train as train_module

    seen = []
    real_epoch = Trainer.train_epoch
    monkeypatch.setattr(train_module.Trainer, "train_epoch",
                        lambda self, on_batch=None: real_epoch(self, lambda: seen.append(blas_threads())))
    assert main(["train", "--epochs", "1", "--quiet", "--threads", "2", "--out", str(tmp_path)]) == 0
    assert seen and set(seen) == {2}
    assert get_num_threads() is None        # the option lasts for the command only
    capsys.readouterr()
    assert main(["train", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "--threads: expected a positive integer, got '0'" in capsys.readouterr().err

