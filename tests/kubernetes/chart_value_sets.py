"""Value sets the pynomaly chart's tests render: each engine, each store, each optional object."""

from __future__ import annotations

from typing import Any

S3 = {"type": "s3", "s3": {"bucket": "models", "prefix": "team-a/pynomaly", "endpoint": "http://minio.minio:9000",
                           "region": "eu-west-1", "existingSecret": "pynomaly-s3", "sessionTokenKey": "token"}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "embedded-default": {},
    "embedded-pvc": {"store": {"type": "pvc", "pvc": {"size": "20Gi", "storageClassName": "standard"}}},
    "embedded-existing-claim": {"store": {"type": "pvc", "pvc": {"existingClaim": "models"}}},
    "embedded-s3-hpa-pdb": {
        "store": S3, "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5,
                                     "targetMemoryUtilizationPercentage": 80},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": "25%"},
    },
    "embedded-observed": {
        "http": {"enabled": True},
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
                    "prometheusRule": {"enabled": True, "labels": {"release": "kps"}}},
        "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]},
        "tls": {"enabled": True, "secretName": "pynomaly-tls", "clientAuth": True},
        "auth": {"existingSecret": "pynomaly-tokens", "reflection": "token"},
        "otel": {"endpoint": "http://otel-collector.observability:4317", "resourceAttributes": "team=a"},
        "server": {"dataRoot": "/data", "outputRoot": "/outputs", "logLevel": "debug", "threads": 4,
                   "trainIdleSeconds": 300, "workers": 4},
        "extraVolumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
                         {"name": "outputs", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True},
                              {"name": "outputs", "mountPath": "/outputs"}],
        "extraEnv": [{"name": "PYTHONFAULTHANDLER", "value": "1"}],
        "podAnnotations": {"example.com/team": "a"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    },
    "ray-default": {"engine": "ray", "store": S3},
    "ray-autoscaled": {
        "engine": "ray",
        "store": {"type": "pvc", "pvc": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs"}},
        "http": {"enabled": True},
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        "networkPolicy": {"enabled": True},
        "tls": {"enabled": True, "secretName": "pynomaly-tls"},
        "auth": {"existingSecret": "pynomaly-tokens", "key": "tokens.txt"},
        "server": {"threads": 3, "maxMessageMb": 128, "dataRoot": "/data",
                   "limits": {"maxQueuedJobs": 4, "maxVersionsPerModel": 20, "maxCacheMb": 2048,
                              "explainTimeoutS": 7.5}},
        "ray": {
            "head": {"rayStartParams": {"num-cpus": "0"}, "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}},
            "worker": {"groupName": "scorers", "replicas": 2, "minReplicas": 1, "maxReplicas": 10,
                       "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}},
            "autoscalerOptions": {"upscalingMode": "Aggressive", "idleTimeoutSeconds": 120},
            "app": {"minReplicas": 2, "maxReplicas": 12, "targetOngoingRequests": 2.5, "maxOngoingRequests": 8,
                    "maxQueuedRequests": 500, "maxModelsPerReplica": 4, "replicaCpus": 1.5, "trainCpus": 2,
                    "batchActors": 6, "batchCpus": 0.25},
        },
    },
    "ray-head-only": {"engine": "ray", "ray": {"worker": {"replicas": 0, "minReplicas": 0, "maxReplicas": 0}}},
}
EMBEDDED = [name for name, values in VALUE_SETS.items() if values.get("engine", "embedded") == "embedded"]
RAY = [name for name, values in VALUE_SETS.items() if values.get("engine") == "ray"]
