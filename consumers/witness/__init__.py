"""A witness: a process a ministry runs with its own Ed25519 key, outside the platform's trust.
It reads the archive's checkpoints, checks the log's signature and a consistency proof from the
last head it cosigned, keeps that head in a small file (fsync'd before anything is published),
never cosigns a smaller tree or two inconsistent heads, and publishes its cosignature/v1.

Modules: state (the file), core (Witness: the decision), service (run_witness: the Kafka loop).

Public names: Refused, Witness, WitnessMetrics, WitnessState, load_state, run_witness,
save_state.
"""

from consumers.witness.core import Refused, Witness
from consumers.witness.service import WitnessMetrics, run_witness
from consumers.witness.state import WitnessState, load_state, save_state

__all__ = [
    "Refused",
    "Witness",
    "WitnessMetrics",
    "WitnessState",
    "load_state",
    "run_witness",
    "save_state",
]
