"""A fit trained in epochs (AutoEncoder, VAE, DeepSVDD, DevNet, AE-1SVM, LUNAR) reports its progress
(pynomaly.fit_progress): each detector's declared epoch plan matches the optimizer steps its library takes, the
reports are throttled but always include the last epoch, and a cancel raised from a report stops the fit there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from pynomaly import algorithms, fit_progress, training

# 301 rows: not a multiple of the batch size, so a dropped (AutoEncoder, VAE) or kept (DeepSVDD, DevNet) last
# partial batch shows in the step count.
X = np.random.default_rng(0).normal(size=(301, 5))
Y = (np.arange(301) % 10 == 0).astype(np.int64)
EPOCHED = sorted(a.name for a in algorithms.ALGORITHMS.values() if a.epochs is not None)
SHORT = {"auto_encoder": {"epoch_num": 3}, "vae": {"epoch_num": 3}, "deep_svdd": {"epochs": 3}, "devnet": {"epochs": 3},
         "ae1svm": {"epochs": 3}, "lunar": {"n_epochs": 3}}


def test_the_detectors_trained_in_epochs_declare_it():
    assert EPOCHED == ["ae1svm", "auto_encoder", "deep_svdd", "devnet", "lunar", "vae"]


def _spec(name: str) -> training.TrainSpec:
    algo = algorithms.get(name)
    return training.TrainSpec(name, name, algo.resolve_params(SHORT[name]), 0.1, [f"f{i}" for i in range(5)],
                              labels=Y if algo.needs_labels else None)


@pytest.mark.parametrize("name", EPOCHED)
def test_the_epoch_plan_counts_the_optimizer_steps_the_library_takes(name):
    spec = _spec(name)
    epochs, per_epoch = algorithms.get(name).epochs(spec.params, len(X))
    steps = []
    handle = register_optimizer_step_post_hook(lambda *_: steps.append(1))
    events = []
    try:
        training.train(spec, X, progress=lambda stage, detail=None: events.append((stage, detail)))
    finally:
        handle.remove()
    assert (epochs, len(steps)) == (3, 3 * per_epoch) and per_epoch >= 1
    reported = [d["done"] for s, d in events if s == training.FIT_PROGRESS]
    assert reported[0] == 1 and reported[-1] == 3 and reported == sorted(set(reported)), reported
    assert {d["total"] for s, d in events if s == training.FIT_PROGRESS} == {3}
    assert {d["unit"] for s, d in events if s == training.FIT_PROGRESS} == {"epoch"}
    stages = [s for s, _ in events if s != training.FIT_PROGRESS]
    assert stages == [training.FIT, training.EXPORT, training.VERIFY]
    at = [s for s, _ in events].index
    assert at(training.FIT) < at(training.FIT_PROGRESS) and max(
        i for i, (s, _) in enumerate(events) if s == training.FIT_PROGRESS) < at(training.EXPORT)


def _steps(n: int) -> None:
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.1)
    for _ in range(n):
        optimizer.zero_grad()
        (w - 1).pow(2).sum().backward()
        optimizer.step()


def test_reports_each_epoch_when_unthrottled_and_nothing_past_the_plan():
    got = []
    with fit_progress.epochs((4, 3), lambda done, total: got.append((done, total)), every_s=0):
        _steps(4 * 3 + 5)  # steps past the plan (a library's extra pass) report nothing
    assert got == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_throttled_reports_keep_the_first_and_the_last_epoch():
    got = []
    with fit_progress.epochs((50, 2), lambda done, total: got.append(done), every_s=3600):
        _steps(100)
    assert got == [1, 50]


@pytest.mark.parametrize("plan", [None, (0, 5), (5, 0)])
def test_no_plan_or_an_empty_epoch_hooks_nothing(plan):
    got = []
    with fit_progress.epochs(plan, lambda done, total: got.append(done), every_s=0):
        _steps(10)
    assert got == []


def test_the_hook_is_gone_after_the_fit_even_when_the_report_cancels_it():
    calls = []

    def cancel(done: int, total: int) -> None:
        calls.append(done)
        raise training.Cancelled("job-x")

    with pytest.raises(training.Cancelled), fit_progress.epochs((10, 2), cancel, every_s=0):
        _steps(20)
    assert calls == [1]  # stopped at the first epoch reported
    _steps(4)
    assert calls == [1], "no step hook is left behind"


def test_a_cancel_at_a_reported_epoch_stops_a_real_fit_there():
    spec = training.TrainSpec("ae", "auto_encoder", algorithms.get("auto_encoder").resolve_params(
        {"epoch_num": 1000, "batch_size": 301}), 0.1, [f"f{i}" for i in range(5)])
    seen = []

    def progress(stage: str, detail: dict | None = None) -> None:
        seen.append(stage if detail is None else detail["done"])
        if stage == training.FIT_PROGRESS and detail["done"] >= 1:
            raise training.Cancelled("job-ae")

    with pytest.raises(training.Cancelled):
        training.train(spec, X, progress=progress)
    assert seen == [training.FIT, 1]
