"""The progress of a fit trained in epochs of torch optimizer steps (AutoEncoder, VAE, DeepSVDD, DevNet, AE-1SVM,
LUNAR).

PyOD's training loops have no callback, but every step goes through `torch.optim.Optimizer.step`, and each of
these detectors declares how many steps an epoch takes (`Algorithm.epochs`). A global step hook, registered for
the duration of one fit (a training worker runs one fit at a time), counts them and reports each finished epoch:
the first, then at most one per `every_s` seconds, and always the last. The report is the job's `progress`, which
raises `training.Cancelled` once a client has cancelled the job: such a fit stops at the end of the next epoch
reported, within about an epoch or `every_s`, whichever is longer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

Report = Callable[[int, int], None]  # (epochs done, epochs in all)


@contextlib.contextmanager
def epochs(plan: tuple[int, int] | None, report: Report, every_s: float = 0.5) -> Iterator[None]:
    """Report the epochs of the fit run inside, `plan` being (epochs, optimizer steps per epoch); with no plan
    (or an epoch of no step) nothing is hooked."""
    if plan is None or plan[0] < 1 or plan[1] < 1:
        yield
        return
    from torch.optim.optimizer import register_optimizer_step_post_hook

    total, per_epoch = plan
    steps, last = 0, -float("inf")

    def stepped(*_: object) -> None:
        nonlocal steps, last
        steps += 1
        done, rest = divmod(steps, per_epoch)
        if rest or done > total:
            return
        now = time.monotonic()
        if done == total or now - last >= every_s:
            last = now
            report(done, total)

    handle = register_optimizer_step_post_hook(stepped)
    try:
        yield
    finally:
        handle.remove()
