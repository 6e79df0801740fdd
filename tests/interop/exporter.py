"""Models trained elsewhere, exported as a user of TensorFlow or JAX would export them. This runs in the interop
environment (tests/interop/interop_env.py, the `interop` extra's pins), never in Pynomaly's, and writes OUT_DIR:

- keras_ae.onnx: a small Keras autoencoder trained on seeded rows, converted with tf2onnx. Two outputs, as a
  user's graph usually has: the reconstruction, and the anomaly score (mean squared reconstruction error per row)
  computed in the tf.function that wraps the model. float32 rows in.
- jax_distance.onnx: a JAX scoring function (a robust Mahalanobis-style distance from the training rows: whitened,
  log1p per coordinate), converted with jax2onnx in double precision. One output. float64 rows in.
- jax_int.onnx: the same function traced on int32 rows: a graph ImportModel must refuse.
- keras_ae.npz, jax_distance.npz: the rows (training, scoring, reference, explained) and what the source framework
  itself computed on them: the scores, and the exact Shapley values of each explained row against the reference
  rows as background, v(S) = mean over reference rows b of f(x_S, b_rest), the value Kernel SHAP computes when
  every coalition is evaluated (up to 11 features).
- versions.json: the libraries that made them.

Usage: python exporter.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from itertools import product
from math import factorial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, and no probing for a GPU
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

FEATURES = 6
REFERENCE_ROWS = 64  # all of them are Kernel SHAP's background (it samples 64 of the reference rows)


def rows() -> tuple[np.ndarray, np.ndarray]:
    """Seeded training rows (correlated normals, 400 × 6) and rows to score: 40 like them, then 8 planted
    outliers."""
    rng = np.random.default_rng(11)
    mix = rng.normal(size=(FEATURES, FEATURES)) * 0.4 + np.eye(FEATURES)
    train = rng.normal(size=(400, FEATURES)) @ mix
    outliers = rng.uniform(4, 7, size=(8, FEATURES)) * rng.choice([-1.0, 1.0], size=(8, FEATURES))
    return train, np.vstack([rng.normal(size=(40, FEATURES)) @ mix, outliers])


def shapley(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, background: np.ndarray) -> tuple[float,
                                                                                                 np.ndarray]:
    """(E_b f(b), exact Shapley values [F]) of row x, by the definition: every coalition, every background row."""
    F = len(x)
    masks = np.array(list(product([False, True], repeat=F)))
    batch = np.where(masks[:, None, :], x, background[None, :, :]).reshape(-1, F)
    v = dict(zip(map(tuple, masks), f(batch).astype(np.float64).reshape(len(masks), -1).mean(axis=1),
                 strict=True))
    phi = np.zeros(F)
    for mask in masks:
        size = int(mask.sum())
        weight = factorial(size) * factorial(F - size - 1) / factorial(F) if size < F else 0.0
        for j in np.flatnonzero(~mask):
            with_j = mask.copy()
            with_j[j] = True
            phi[j] += weight * (v[tuple(with_j)] - v[tuple(mask)])
    return v[(False,) * F], phi


def save(path: Path, f: Callable[[np.ndarray], np.ndarray], train: np.ndarray, score: np.ndarray,
         reference: np.ndarray, explain: np.ndarray) -> None:
    values = [shapley(f, x, reference) for x in explain]
    np.savez(path, train=train, score_rows=score, scores=f(score), reference=reference,
             reference_scores=f(reference), explain_rows=explain,
             shapley_base=np.array([b for b, _ in values]), shapley=np.array([phi for _, phi in values]))


def keras_autoencoder(train: np.ndarray, score: np.ndarray, reference: np.ndarray, explain: np.ndarray,
                      out: Path) -> dict[str, str]:
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    ae = keras.Sequential([keras.Input(shape=(FEATURES,)), keras.layers.Dense(8, activation="tanh"),
                           keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(8, activation="tanh"),
                           keras.layers.Dense(FEATURES)])
    ae.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x = train.astype(np.float32)
    ae.fit(x, x, epochs=20, batch_size=32, verbose=0)

    @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="rows")])
    def detector(x: tf.Tensor) -> dict[str, tf.Tensor]:
        reconstruction = ae(x, training=False)
        return {"reconstruction": reconstruction, "score": tf.reduce_mean(tf.square(x - reconstruction), axis=1)}

    model, _ = tf2onnx.convert.from_function(detector, input_signature=detector.input_signature, opset=17)
    (out / "keras_ae.onnx").write_bytes(model.SerializeToString())

    def native(rows: np.ndarray) -> np.ndarray:  # the rows as the graph sees them: float32
        return detector(tf.constant(rows.astype(np.float32)))["score"].numpy()

    save(out / "keras_ae.npz", native, train, score, reference, explain)
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__}


def jax_robust_distance(train: np.ndarray, score: np.ndarray, reference: np.ndarray, explain: np.ndarray,
                        out: Path) -> dict[str, str]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax2onnx

    # Whitened by the training rows' covariance; log1p per whitened coordinate bounds each one's pull (a Student-t
    # style negative log-likelihood, up to constants). Not additive in the raw features, which are correlated.
    mean = jnp.asarray(train.mean(axis=0))
    whiten = jnp.asarray(np.linalg.inv(np.linalg.cholesky(np.cov(train, rowvar=False))).T)

    def robust_distance(x: jax.Array) -> jax.Array:
        z = (x.astype(jnp.float64) - mean) @ whiten
        return jnp.sum(jnp.log1p(z**2), axis=1)

    def export(dtype: object, name: str) -> None:
        model = jax2onnx.to_onnx(robust_distance, [jax.ShapeDtypeStruct(("B", FEATURES), dtype)],
                                 enable_double_precision=True, opset=17, input_names=["x"],
                                 output_names=["distance"], model_name="robust_distance")
        (out / name).write_bytes(model.SerializeToString())

    export(jnp.float64, "jax_distance.onnx")
    # A user who traced the same function on integer rows: ImportModel takes float or double rows only.
    export(jnp.int32, "jax_int.onnx")
    score_fn = jax.jit(robust_distance)

    def native(x: np.ndarray) -> np.ndarray:
        return np.asarray(score_fn(jnp.asarray(x)))

    save(out / "jax_distance.npz", native, train, score, reference, explain)
    from importlib.metadata import version

    return {"jax": jax.__version__, "jaxlib": version("jaxlib"), "jax2onnx": version("jax2onnx")}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python exporter.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    train, score = rows()
    reference = train[:REFERENCE_ROWS]
    explain = score[[0, 1, 2, -3, -2, -1]]  # three ordinary rows, three planted outliers
    versions = {**keras_autoencoder(train, score, reference, explain, out),
                **jax_robust_distance(train, score, reference, explain, out)}
    (out / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    print(json.dumps(versions))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
