"""The witness's memory: the last checkpoint it cosigned, in one small file replaced
atomically and fsync'd (file and directory) before any cosignature leaves the process."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class WitnessState:
    origin: str
    size: int
    root: bytes
    note: str  # the checkpoint as the log signed it: evidence if the log later contradicts it


def load_state(path: Path) -> WitnessState | None:
    if not path.exists():
        return None
    obj = json.loads(path.read_text(encoding="utf-8"))
    return WitnessState(obj["origin"], int(obj["size"]), base64.b64decode(obj["root"]), obj["note"])


def save_state(path: Path, state: WitnessState) -> None:
    data = json.dumps(
        {
            "origin": state.origin,
            "size": state.size,
            "root": base64.b64encode(state.root).decode(),
            "note": state.note,
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself is durable
    finally:
        os.close(dir_fd)
