"""`lienthong decode` on the real broker: a routed document read back from submissions, the
recipient's inbox and the dead letters as JSON lines, garbage included."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from infra.cli.decode import decode_topic
from infra.settings import Settings
from signing.seal import seal
from tests.conftest import BA_DINH, H26
from tests.integration.test_router import creds, exchange, running_router
from tests.support import kafka_options, publish, read_topic, seed_document, utcnow

__all__ = ["exchange"]  # a fixture, used by name below

ROOT = Path(__file__).resolve().parents[2]
GARBAGE = b"\x00not avro at all \xff"


def lienthong_decode(
    service_env: dict[str, str], exchange: Settings, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**service_env, "LIENTHONG_TOPIC_PREFIX": exchange.topic_prefix}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "--log-json", "decode", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_decode_prints_submissions_inbox_and_dead_letters_as_json_lines(
    service_env: dict[str, str], exchange: Settings, bootstrap: str, pki_dir: Path
) -> None:
    doc = seed_document(9201, [BA_DINH])
    envelope = seal(doc, credentials=creds(pki_dir, H26), at=utcnow())
    async with running_router(exchange, bootstrap):
        await publish(bootstrap, exchange.topic("submissions"), [envelope])
        await publish(bootstrap, exchange.topic("submissions"), [GARBAGE], key=b"junk")
        assert len(await read_topic(bootstrap, exchange.inbox(BA_DINH), expect=1)) == 1
        assert len(await read_topic(bootstrap, exchange.topic("deadletter"), expect=1)) == 1

    # The inbox, through the command as an operator runs it (a short topic name).
    done = await asyncio.to_thread(
        lienthong_decode, service_env, exchange, "--topic", f"inbox.{BA_DINH}"
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 1
    (inbox,) = lines
    assert inbox["topic"] == exchange.inbox(BA_DINH) and inbox["offset"] == 0
    assert inbox["key"] == doc.document_id
    assert inbox["headers"]["lt-sender"] == H26
    env = inbox["value"]["envelope"]
    assert env["message_id"] == envelope.message_id and env["recipients"] == [BA_DINH]
    assert [hop["agency"] for hop in env["trace"]] == [exchange.platform_agency]
    assert env["payload"]["subject"] == doc.subject  # the payload decoded, Vietnamese as is
    assert env["payload"]["code"]["notation"] == doc.code.notation
    assert "error" not in inbox

    # Submissions: the envelope and the garbage, each printed, in partition order.
    out: list[str] = []
    count = await decode_topic(
        bootstrap,
        exchange.topic("submissions"),
        emit=out.append,
        client_options=kafka_options(),
    )
    subs = [json.loads(line) for line in out]
    assert count == len(subs) == 2
    by_key = {s["key"]: s for s in subs}
    assert by_key[doc.document_id]["value"]["envelope"]["payload"]["subject"] == doc.subject
    junk = by_key["junk"]
    assert junk["value"] == {"base64": "AG5vdCBhdnJvIGF0IGFsbCD/"}
    assert junk["error"].startswith("bad_magic")

    # The dead letter: bytes that do not decode are not kept (they might be a secret
    # document's); their digest, size and the reason are in the headers.
    out.clear()
    assert (
        await decode_topic(
            bootstrap,
            exchange.topic("deadletter"),
            emit=out.append,
            client_options=kafka_options(),
        )
        == 1
    )
    (dead,) = [json.loads(line) for line in out]
    assert dead["headers"]["lt-reason"] == "MALFORMED"  # the router's reason code
    assert dead["value"] == {"empty": True}
    garbage = base64.b64decode("AG5vdCBhdnJvIGF0IGFsbCD/")
    assert dead["headers"]["lt-sha256"] == hashlib.sha256(garbage).hexdigest()
    assert dead["headers"]["lt-size"] == str(len(garbage))

    # The router's changelog: the document's state as JSON.
    out.clear()
    await decode_topic(
        bootstrap,
        exchange.topic("router-state"),
        emit=out.append,
        client_options=kafka_options(),
    )
    states = [json.loads(line) for line in out]
    doc_state = next(s for s in states if s["key"] == f"doc:{doc.document_id}")
    assert doc_state["value"]["json"]["recipients"] == [BA_DINH]


async def test_decode_offsets_max_partition_and_follow(exchange: Settings, bootstrap: str) -> None:
    topic = exchange.topic("deadletter")
    await publish(bootstrap, topic, [b"one", b"two", b"three"], key=b"k")  # one partition
    partition = (await read_topic(bootstrap, topic, expect=3))[0].partition
    out: list[str] = []
    assert (
        await decode_topic(
            bootstrap,
            topic,
            start=-2,
            emit=out.append,
            client_options=kafka_options(),
        )
        == 2
    )
    assert [json.loads(x)["offset"] for x in out] == [1, 2]
    out.clear()
    assert (
        await decode_topic(
            bootstrap,
            topic,
            start=1,
            max_records=1,
            emit=out.append,
            client_options=kafka_options(),
        )
        == 1
    )
    assert json.loads(out[0])["offset"] == 1
    out.clear()
    others = [p for p in range(3) if p != partition]
    assert (
        await decode_topic(
            bootstrap,
            topic,
            partitions=others,
            emit=out.append,
            client_options=kafka_options(),
        )
        == 0
    )

    # --follow from the end: only what arrives after it started, until stopped.
    stop = asyncio.Event()
    out.clear()
    following = asyncio.create_task(
        decode_topic(
            bootstrap,
            topic,
            start="end",
            follow=True,
            emit=out.append,
            stop=stop,
            client_options=kafka_options(),
        )
    )
    await asyncio.sleep(2)
    await publish(bootstrap, topic, [b"four"], key=b"k")
    for _ in range(100):
        if out:
            break
        await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(following, 10) == 1
    assert json.loads(out[0])["offset"] == 3


def test_decode_of_a_missing_topic_is_one_line(
    service_env: dict[str, str], exchange: Settings
) -> None:
    done = lienthong_decode(service_env, exchange, "--topic", "no-such-topic")
    assert done.returncode == 2
    assert "error: no topic no-such-topic on 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
