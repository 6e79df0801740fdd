"""The AnomalyDetector operator: a Kubernetes resource that trains a detector on the Pynomaly platform, gates it, and
moves a serving alias to it.

    resources.py  pure builders: the spec read and checked, job tags, conditions, status patches
    reconcile.py  pure decisions: spec + status + what the platform says -> actions and a status patch
    platform.py   the gRPC side: observes the platform, executes the actions (the SDK client), scores the holdout
    handlers.py   kopf registrations, a few lines each (`kopf run --standalone -m pynomaly_operator.handlers`)

Only handlers.py imports kopf: everything else runs (and is tested) without a cluster.
"""

GROUP = "pynomaly.io"
VERSION = "v1"
PLURAL = "anomalydetectors"
KIND = "AnomalyDetector"
