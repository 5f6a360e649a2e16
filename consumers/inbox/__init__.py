"""An agency's inbox: InboxSubscriber reads it, verifies every envelope again and hands each
record on as a Delivery or a Refusal; files writes them to disk, attachments checked.

Modules: subscriber (InboxSubscriber), files (deliveries and refusals on disk).

Public names: AttachmentMismatch, Delivery, InboxSubscriber, Refusal, mark_answered, refusal_of,
safe_name, was_answered, write_delivery, write_refusal.
"""

from consumers.inbox.files import (
    AttachmentMismatch,
    mark_answered,
    refusal_of,
    safe_name,
    was_answered,
    write_delivery,
    write_refusal,
)
from consumers.inbox.subscriber import Delivery, InboxSubscriber, Refusal

__all__ = [
    "AttachmentMismatch",
    "Delivery",
    "InboxSubscriber",
    "Refusal",
    "mark_answered",
    "refusal_of",
    "safe_name",
    "was_answered",
    "write_delivery",
    "write_refusal",
]
