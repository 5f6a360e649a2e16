"""lienthong contracts: Avro schemas, codec, domain value types, agencies, topic manifests."""
