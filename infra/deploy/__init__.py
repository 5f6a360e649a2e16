"""Deployment: the long-running services as systemd units and as Kubernetes resources (Strimzi
topics and users, a CloudNativePG cluster, the workloads), rendered from one catalog.

Modules: catalog (the services: command, identity, database role, secrets), systemd (units),
kubernetes (resources and the secrets script), pkibundle (each service's part of the PKI).
Public names: SERVICES, ServiceSpec, systemd_units, KubeOptions, Manifests,
kubernetes_manifests, create_log_key.
"""

from infra.deploy.catalog import SERVICES, ServiceSpec
from infra.deploy.kubernetes import KubeOptions, Manifests, create_log_key, kubernetes_manifests
from infra.deploy.systemd import systemd_units

__all__ = [
    "SERVICES",
    "KubeOptions",
    "Manifests",
    "ServiceSpec",
    "create_log_key",
    "kubernetes_manifests",
    "systemd_units",
]
