"""What every consuming service shares, not a subsystem of its own: riding out a broker outage
(waits a stop request cuts short, bounded back-off, clients closed within seconds).

Modules: stopping.

Public names: Backoff, Stopped, close_all, keep_starting, pause, unless_stopped.
"""

from consumers.lifecycle.stopping import (
    Backoff,
    Stopped,
    close_all,
    keep_starting,
    pause,
    unless_stopped,
)

__all__ = ["Backoff", "Stopped", "close_all", "keep_starting", "pause", "unless_stopped"]
