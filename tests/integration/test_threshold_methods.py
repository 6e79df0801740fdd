"""A training job's threshold method over the API and the CLI, on both engines: a pythresh method's threshold is
frozen into the card with the share of training rows it flags, Detect applies it, the default says
"contamination", and an unknown method is refused listing the choices."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pynomaly import thresholds
from pynomaly.client_errors import InvalidArgumentError

RNG = np.random.default_rng(154)
X = np.vstack([RNG.normal(size=(500, 3)), RNG.uniform(5, 7, size=(15, 3))])


def test_a_pythresh_method_sets_the_threshold_and_detect_applies_it(server, client):
    card = client.train(f"iqr-{server.engine}", X, algorithm="hbos", threshold_method="iqr")
    assert card.threshold_method == "iqr"
    result = client.detect(f"{card.name}@{card.version}", X)
    assert result.threshold == card.threshold
    assert card.flagged_share == pytest.approx(result.is_anomaly.mean(), abs=1e-12) and card.flagged_share < 0.1
    assert result.is_anomaly[-15:].all()
    default = client.train(f"default-{server.engine}", X, algorithm="hbos", contamination=0.05)
    assert default.threshold_method == "contamination"
    assert default.flagged_share == pytest.approx(0.05, abs=2 / len(X))


def test_an_unknown_method_is_refused_listing_the_choices(server, client):
    with pytest.raises(InvalidArgumentError) as e:
        client.start_training(f"otsu-{server.engine}", X, algorithm="hbos", threshold_method="otsu")
    assert e.value.details() == ("threshold_method: unknown method 'otsu'; choose 'contamination' (the default) or "
                                 "a pythresh method: " + ", ".join(sorted(thresholds.METHODS)))
    assert e.value.reason == "INVALID_PARAMETER" and server.alive()


def test_the_cli_takes_a_threshold_method(server, tmp_path):
    data = tmp_path / "rows.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).to_csv(data, index=False)
    out = subprocess.run([sys.executable, "-m", "pynomaly.cli", "train", "--server", server.address, "--name",
                          f"cli-zscore-{server.engine}", "--data", str(data), "--threshold-method", "zscore"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [x.strip() for x in out.stderr.splitlines() if x.strip().startswith("threshold ")]
    assert len(lines) == 1 and re.fullmatch(r"threshold \S+ \(zscore: flags \d+\.\d\d% of the training rows\)",
                                            lines[0]), lines
    bad = subprocess.run([sys.executable, "-m", "pynomaly.cli", "train", "--server", server.address, "--name",
                          f"cli-otsu-{server.engine}", "--data", str(data), "--threshold-method", "otsu"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr == ("error: INVALID_ARGUMENT: threshold_method: unknown method 'otsu'; choose 'contamination' "
                          "(the default) or a pythresh method: " + ", ".join(sorted(thresholds.METHODS)) + "\n")
