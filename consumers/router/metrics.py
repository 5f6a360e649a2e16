"""The router's account of what it did: a log line and metrics per submission, the refusal alarm."""

from __future__ import annotations

import collections

import structlog
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumers.router.routing import Rejected, Routed
from consumers.telemetry import LATENCY_BUCKETS, lag_gauge, trace_fields
from schemas.trace import CONSUMER, AttributeValue, Span, TraceContext

log = structlog.get_logger()


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.routed = Counter(
            "lienthong_router_routed", "Submissions routed", ["payload_type"], registry=r
        )
        self.deliveries = Counter(
            "lienthong_router_deliveries", "Copies delivered to inboxes", registry=r
        )
        self.rejected = Counter(
            "lienthong_router_rejected", "Submissions refused", ["reason"], registry=r
        )
        self.reject_share = Gauge(
            "lienthong_router_reject_share",
            "Share of refusals among recent submissions",
            registry=r,
        )
        self.alarm = Gauge(
            "lienthong_router_reject_alarm",
            "1 while the refusal share is above its limit",
            registry=r,
        )
        self.batches = Counter(
            "lienthong_router_transactions", "Transactions committed", registry=r
        )
        self.retries = Counter(
            "lienthong_router_retries", "Batches retried after transient errors", registry=r
        )
        self.forwarded = Counter(
            "lienthong_router_forwarded",
            "Submissions that arrived off their document's partition, moved there",
            registry=r,
        )
        self.route_seconds = Histogram(
            "lienthong_router_route_seconds",
            "From a submission's Kafka timestamp (the sender's send) to the commit of the "
            "transaction that routed or refused it",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = lag_gauge(r)


class RejectionAlarm:
    """A burst of invalid input never stops the router, but it must not go unnoticed."""

    def __init__(self, share: float, window: int) -> None:
        self.share = share
        self.recent: collections.deque[bool] = collections.deque(maxlen=window)
        self.raised = False

    def record(self, rejected: bool) -> float:
        self.recent.append(rejected)
        return sum(self.recent) / len(self.recent)

    def check(self, current: float) -> bool | None:
        """True when the alarm goes up, False when it clears, None when unchanged."""
        full = len(self.recent) >= min(20, self.recent.maxlen or 20)
        above = full and current > self.share
        if above != self.raised:
            self.raised = above
            return above
        return None


def account(
    outcome: Routed | Rejected,
    record: ConsumerRecord,
    metrics: RouterMetrics,
    alarm: RejectionAlarm,
    context: TraceContext | None = None,
) -> None:
    """One canonical log line per handled submission, its metrics, and the refusal alarm."""
    where = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        **trace_fields(context),
    }
    if isinstance(outcome, Routed):
        env = outcome.envelope
        metrics.routed.labels(str(env.payload_type)).inc()
        metrics.deliveries.inc(len(outcome.recipients))
        log.info(
            "router.routed",
            **where,
            message_id=env.message_id,
            document_id=env.document_id,
            sender=env.sender,
            payload_type=str(env.payload_type),
            recipients=len(outcome.recipients),
        )
    else:
        metrics.rejected.labels(outcome.reason).inc()
        # Identifiers of what may be secret stay out of the logs (a document id names a number
        # and notation): for a secret document, or bytes not kept, digest, sender, reason only.
        ids = (
            {"message_id": outcome.message_id, "document_id": outcome.document_id}
            if outcome.keep_content
            else {"sha256": outcome.digest}
        )
        log.warning(
            "router.rejected",
            **where,
            **ids,
            sender=outcome.sender,
            reason=outcome.reason,
            detail="" if outcome.secret else outcome.detail,
        )
    # A resent copy of what was routed is no sign of a bad deploy: it does not feed the alarm.
    share = alarm.record(isinstance(outcome, Rejected) and outcome.reason != "RESUBMITTED")
    metrics.reject_share.set(share)
    change = alarm.check(share)
    if change is True:
        metrics.alarm.set(1)
        log.error(
            "router.reject_alarm",
            share=round(share, 3),
            limit=alarm.share,
            window=len(alarm.recent),
        )
    elif change is False:
        metrics.alarm.set(0)
        log.info("router.reject_alarm_cleared", share=round(share, 3))


def route_span(
    outcome: Routed | Rejected,
    record: ConsumerRecord,
    context: TraceContext,
    parent_id: str | None,
    started_ns: int,
    ended_ns: int,
    group: str,
) -> Span:
    """A submission's routing as a span: its id is the one every record written because of the
    submission carries (inbox copies, dead letter, 02), its parent the sender's; it ends when
    the transaction committed. Codes and ids only, with the log lines' rule for secrets."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group,
    }
    if isinstance(outcome, Routed):
        env = outcome.envelope
        attributes.update(
            {
                "lienthong.outcome": "routed",
                "messaging.message.id": env.message_id,
                "lienthong.payload_type": str(env.payload_type),
                "lienthong.sender": env.sender,
                "lienthong.recipients": len(outcome.recipients),
            }
        )
        error = None
    else:
        attributes["lienthong.outcome"] = "rejected"
        attributes["lienthong.reason"] = outcome.reason
        if outcome.sender:
            attributes["lienthong.sender"] = outcome.sender
        if outcome.keep_content and outcome.message_id:
            attributes["messaging.message.id"] = outcome.message_id
        error = outcome.reason
    return Span(
        "route", CONSUMER, context, parent_id, started_ns, ended_ns, attributes, error=error
    )
