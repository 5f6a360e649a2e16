"""Live trust for running services: the crl topic followed (TrustFeed) so that a revocation
reaches every process within seconds, and the service's own signing certificates watched
(MonitoredCredentials) so that nothing is signed outside a certificate's validity.

Modules: feed (TrustFeed: verify, order, staleness; the Kafka loop), record (the crl topic's
key, value and headers; publish_crl), credentials (MonitoredCredentials), metrics (TrustMetrics).

Public names: CrlRecord, MonitoredCredentials, TrustFeed, TrustMetrics, crl_record, publish_crl.
"""

from consumers.trustfeed.credentials import MonitoredCredentials
from consumers.trustfeed.feed import TrustFeed
from consumers.trustfeed.metrics import TrustMetrics
from consumers.trustfeed.record import CrlRecord, crl_record, publish_crl

__all__ = [
    "CrlRecord",
    "MonitoredCredentials",
    "TrustFeed",
    "TrustMetrics",
    "crl_record",
    "publish_crl",
]
