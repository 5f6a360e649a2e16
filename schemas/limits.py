"""Limits every layer enforces alike: the sending SDK, the topics, the router and the readers."""

# Messages up to this size travel whole (a 20 MB document plus Avro and signature overhead).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

# The one limit on an encoded Envelope, enforced alike by the SDK before it sends and by the
# router (TOO_LARGE, with a 02 to a proven sender): room for 25 MiB of attachments and the
# signatures. Topics accept up to MAX_MESSAGE_BYTES, so a larger envelope from another client
# still reaches the router and its sender is told, rather than refused by the broker alone.
MAX_ENVELOPE_BYTES = 26 * 1024 * 1024
