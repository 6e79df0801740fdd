"""The web console (`pynomaly serve --http-listen`, at `/`): models, training, scoring and explanations for people
in a browser, server-rendered (Jinja2 templates, htmx swaps, Vega-Lite plots), over the same data plane, limits,
auth and error table as the gRPC and REST APIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pynomaly.web.console import models, pages, score, train
from pynomaly.web.console.results import Results

__all__ = ["Console", "routes"]


@dataclass
class Console:
    """What the console's routes share (the app's state.console)."""

    dataplane: Any
    max_body_bytes: int
    results: Results = field(default_factory=Results)


def routes() -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    return [
        Route("/", models.models, methods=get),
        Route("/models/{name}", models.model_card, methods=get),
        Route("/models/{name}/aliases", models.set_alias, methods=post),
        Route("/models/{name}/aliases/{alias}/delete", models.delete_alias, methods=post),
        Route("/models/{name}/versions/{version}/delete", models.confirm_delete, methods=get),
        Route("/models/{name}/versions/{version}/delete", models.delete_version, methods=post),
        Route("/train", train.train_form, methods=get),
        Route("/train", train.train, methods=post),
        Route("/train/params", train.params_fragment, methods=get),
        Route("/jobs", train.jobs, methods=get),
        Route("/jobs/batch/{id}", train.batch_job, methods=get),
        Route("/jobs/batch/{id}/cancel", train.cancel_batch_job, methods=post),
        Route("/jobs/{id}", train.job, methods=get),
        Route("/jobs/{id}/cancel", train.cancel_job, methods=post),
        Route("/score", score.score_form, methods=get),
        Route("/score", score.score, methods=post),
        Route("/score/batch", score.batch, methods=post),
        Route("/results/{id}", score.result, methods=get),
        Route("/results/{id}/download", score.download, methods=get),
        Route("/results/{id}/rows/{row}/explain", score.explain, methods=get),
        Route("/login", pages.login, methods=["GET", "POST"]),
        Route("/logout", pages.logout, methods=post),
        Mount("/static", StaticFiles(directory=pages.STATIC, check_dir=False), name="static"),
    ]
