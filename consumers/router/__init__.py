"""The router: reads submissions, verifies and routes each one to its recipients' inboxes, or
refuses it with a reason (dead letter, and a 02 notice to a proven sender), exactly once, in
Kafka transactions.

Modules: service (Router: the Kafka loop and transactions), routing (route_submission: the pure
decision), rejections (dead letters and 02 notices), state / store / restore (what the router
remembers about each document, kept on disk and rebuilt from the router-state changelog),
metrics.

Public names: Rejected, Routed, Router, RouterConfig, RouterMetrics, RouterTopics,
RoutingPolicy, route_submission.
"""

from consumers.router.routing import Rejected, Routed, RoutingPolicy, route_submission
from consumers.router.service import Router, RouterConfig, RouterMetrics, RouterTopics

__all__ = [
    "Rejected",
    "Routed",
    "Router",
    "RouterConfig",
    "RouterMetrics",
    "RouterTopics",
    "RoutingPolicy",
    "route_submission",
]
