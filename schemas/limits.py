"""Limits every layer enforces alike: the sending SDK, the topics, the router and the readers."""

# Messages up to this size travel whole (a 20 MB document plus Avro and signature overhead).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
