"""The conformance kit's generator (the kit itself is conformance/ at the repository root)."""
