"""Export cases of the adversarial family (SO_GAAL, MO_GAAL, ALAD, AnoGAN), picked up by export_cases.py.

Fits are a few epochs on the deep family's 240 seeded rows: parity needs a fitted network, not a good one.
ALAD's `epochs` are single batches; AnoGAN's fit also searches a latent for every training row (epochs_query steps
each), so its cases keep that at 1-2.
"""

from __future__ import annotations

import numpy as np

import export_cases
import export_data as data

NAME = "gan"
FAMILY = export_cases.Family(lambda c: data.deep_train(c.dataset), lambda t, c, d: data.deep_rows(t),
                             lambda n: np.r_[np.linspace(0, n - 1, 40).astype(int), n - 2, n - 1])

_ALAD_SN = {"epochs": 20, "spectral_normalization": True, "add_recon_loss": True, "preprocessing": True,
            "output_activation": "sigmoid", "activation_hidden_gen": "relu", "activation_hidden_disc": "sigmoid",
            "dec_layers": [], "latent_dim": 3, "dropout_rate": 0.0}
_ANOGAN_PRE = {"epochs": 1, "epochs_query": 2, "preprocessing": True, "activation_hidden": "leaky_relu",
               "output_activation": "tanh", "G_layers": [8], "D_layers": [8, 4], "dropout_rate": 0.0}

# normal: float64 N(0, 1), 6 features; constant: one column constant (a StandardScaler scale of 1, PyOD's own).
TABLE = (("normal",), {
    "so_gaal-3ep": export_cases.Config("so_gaal", {"stop_epochs": 1}),
    "mo_gaal-3ep": export_cases.Config("mo_gaal", {"stop_epochs": 1}),
    "mo_gaal-k3-sgd0": export_cases.Config("mo_gaal", {"stop_epochs": 1, "k": 3, "momentum": 0.0, "lr_d": 0.1}),
    "alad-20steps": export_cases.Config("alad", {"epochs": 20}, ("normal", "constant")),
    "alad-sn-recon-pre": export_cases.Config("alad", _ALAD_SN, ("normal", "constant")),
    "anogan-1ep": export_cases.Config("anogan", {"epochs": 1, "epochs_query": 1}),
    "anogan-pre-leaky": export_cases.Config("anogan", _ANOGAN_PRE, ("normal", "constant")),
    "anogan-elu-relu-out": export_cases.Config("anogan", {"epochs": 1, "epochs_query": 1, "activation_hidden": "elu",
                                                          "output_activation": "relu"}),
}, set())
