"""Benchmark: auditors' searches over N archived documents, p50/p95/p99 per kind of search.

Run: python -m bench.audit_search --documents 1000000 [--quick]. The documents are a fixture
written with COPY into a scratch database (`lienthong_bench_audit` on the project's server, or
--database-url), not the pipeline: realistic shape (~640 agencies with skewed volumes, Vietnamese
subjects with diacritics, several years of dates, recipient arrays), made in seconds. Searches
run through consumers.audit exactly as `lienthong audit search` runs them, as the auditor role.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from consumers.audit import SearchFilters, build_search, search_documents
from infra import services
from infra.compose.audit import auditor_url
from infra.services.migrate import migrate
from infra.settings import load_settings

RESULTS = Path(__file__).parent / "results" / "audit_search.json"
SCRATCH = "lienthong_bench_audit"
START, YEARS = datetime(2019, 1, 1, tzinfo=UTC), 7

KINDS = [  # (prefix, abbreviation, notation suffix)
    ("Quyết định về việc", "QĐ", "QĐ-UBND"), ("Kế hoạch", "KH", "KH-UBND"),
    ("Báo cáo", "BC", "BC-UBND"), ("Thông báo", "TB", "TB-VP"), ("Công văn về việc", "", "UBND-VP"),
    ("Tờ trình", "TTr", "TTr-SNV"), ("Chỉ thị về", "CT", "CT-UBND"), ("Hướng dẫn", "HD", "HD-STC"),
    ("Giấy mời họp về", "GM", "GM-VP"), ("Đề án", "ĐA", "ĐA-UBND"),
]  # fmt: skip
TOPICS = [
    "cải cách thủ tục hành chính", "chuyển đổi số", "xây dựng nông thôn mới",
    "phòng chống dịch bệnh", "giải phóng mặt bằng", "quản lý đất đai", "an toàn giao thông",
    "phòng cháy chữa cháy", "thu ngân sách nhà nước", "đầu tư công", "bảo vệ môi trường",
    "giáo dục và đào tạo", "y tế cơ sở", "an sinh xã hội", "giải quyết khiếu nại tố cáo",
    "tiếp công dân", "xây dựng chính quyền điện tử", "phát triển du lịch", "quy hoạch đô thị",
    "trật tự xây dựng", "quản lý thị trường", "phòng chống tham nhũng", "thi đua khen thưởng",
    "tuyển dụng công chức", "đào tạo bồi dưỡng cán bộ", "cấp giấy chứng nhận quyền sử dụng đất",
    "hỗ trợ hộ nghèo", "sửa chữa nhà ở cho người có công", "phòng chống thiên tai",
    "nước sạch nông thôn", "chợ truyền thống", "an toàn thực phẩm", "văn hóa cơ sở",
    "thể dục thể thao", "dân số và phát triển", "bảo hiểm y tế", "lao động việc làm",
    "kinh tế tập thể", "hợp tác xã", "doanh nghiệp nhỏ và vừa", "xuất khẩu nông sản",
    "hạ tầng giao thông", "thoát nước đô thị", "chiếu sáng công cộng", "cây xanh đô thị",
    "phòng chống ma túy", "quốc phòng địa phương", "dân quân tự vệ", "bầu cử đại biểu",
    "công tác dân tộc", "tôn giáo", "người cao tuổi", "trẻ em", "bình đẳng giới",
]  # fmt: skip
QUALIFIERS = [
    "năm {y}",
    "giai đoạn 2021-2025",
    "quý {q} năm {y}",
    "trên địa bàn thành phố",
    "trên địa bàn quận {d}",
    "tại huyện {d}",
    "6 tháng đầu năm {y}",
    "đợt {q}",
    "",
]
PLACES = [
    "Ba Đình", "Hoàn Kiếm", "Hai Bà Trưng", "Đống Đa", "Tây Hồ", "Cầu Giấy", "Thanh Xuân",
    "Hoàng Mai", "Long Biên", "Gia Lâm", "Đông Anh", "Sóc Sơn", "Thanh Trì", "Mê Linh",
    "Chương Mỹ", "Ba Vì", "Thanh Oai", "Quốc Oai", "Mỹ Đức", "Ứng Hòa", "Phú Xuyên",
]  # fmt: skip
# Words auditors type, without diacritics (what "thu tuc hanh chinh" stands for).
TEXT_QUERIES = [
    "thu tuc hanh chinh", "chuyen doi so", "giai phong mat bang", "phong chay chua chay",
    "khieu nai to cao", "nha o nguoi co cong", "nuoc sach nong thon", "an toan thuc pham",
    "quan ly dat dai dong da", "ke hoach chuyen doi so", "dan quan tu ve", "cho truyen thong",
]  # fmt: skip


def agencies(count: int = 640) -> list[str]:
    """Ministries (G), the city's departments and districts (H26), and their units."""
    codes = [f"000.00.00.G{i:02d}" for i in range(1, 31)]
    codes += [f"000.00.{i:02d}.H26" for i in range(0, 80)]
    codes += [f"000.{u:02d}.{d:02d}.H26" for d in range(1, 80) for u in range(1, 99)]
    return codes[:count]


def subject(rng: random.Random) -> tuple[str, str, str]:
    prefix, abbr, notation = rng.choice(KINDS)
    topic = rng.choice(TOPICS)
    tail = rng.choice(QUALIFIERS).format(
        y=rng.randint(2019, 2025), q=rng.choice(["I", "II", "III", "IV"]), d=rng.choice(PLACES)
    )
    extra = f" và {rng.choice(TOPICS)}" if rng.random() < 0.3 else ""
    return f"{prefix} {topic}{extra} {tail}".strip(), abbr, notation


def documents(n: int, codes: list[str], seed: int = 190) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    # Volumes are skewed: the city committee sends far more than a commune does.
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(codes))]
    senders = rng.choices(codes, weights, k=n)
    span = YEARS * 365 * 86400
    for i in range(n):
        text, abbr, notation = subject(rng)
        sender = senders[i]
        at = START + timedelta(seconds=rng.randrange(span))
        k = rng.choice((1, 1, 2, 3, 5)) if rng.random() < 0.97 else rng.randint(10, 30)
        recipients = rng.sample(codes, k)
        outcome = rng.choices(("routed", "rejected", "pending"), (97, 2, 1))[0]
        number = str(rng.randint(1, 9999))
        yield (
            f"{sender},{at:%Y/%m/%d},{number}/{notation}#{i}", "official_document", sender,
            recipients, number, notation, abbr, text, at.date(), at, outcome,
        )  # fmt: skip


COLUMNS = [
    "document_id", "payload_type", "sender", "recipients", "number", "notation", "doc_type",
    "subject", "promulgation_date", "submitted_at", "routing_outcome",
]  # fmt: skip


async def load(admin_url: str, n: int) -> str:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {SCRATCH}")
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}"))
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        # Bulk load, then index: building each index once is far faster than maintaining it
        # row by row, and gives the same indexes the migrations define.
        defs = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'document' "
            "AND indexname <> 'document_pkey'"
        )
        for d in defs:
            await conn.execute(f"DROP INDEX {d['indexname']}")
        codes = agencies()
        started = time.perf_counter()
        batch: list[tuple[Any, ...]] = []
        for row in documents(n, codes):
            batch.append(row)
            if len(batch) == 50_000:
                await conn.copy_records_to_table("document", records=batch, columns=COLUMNS)
                batch.clear()
        if batch:
            await conn.copy_records_to_table("document", records=batch, columns=COLUMNS)
        print(f"loaded {n} documents in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for d in defs:
            await conn.execute(d["indexdef"])
        await conn.execute("VACUUM ANALYZE document")
        print(f"indexed in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()
    return url


Case = Callable[[random.Random], SearchFilters]


def cases(codes: list[str]) -> dict[str, Case]:
    busy = codes[:60]  # agencies with volume worth auditing

    def agency_and_dates(rng: random.Random) -> SearchFilters:
        start = date(2019, 1, 1) + timedelta(days=rng.randrange(YEARS * 365 - 90))
        return SearchFilters(
            sender=rng.choice(busy), date_from=start, date_to=start + timedelta(days=90)
        )

    def subject_words(rng: random.Random) -> SearchFilters:
        return SearchFilters(text=rng.choice(TEXT_QUERIES))

    def recipient(rng: random.Random) -> SearchFilters:
        return SearchFilters(recipient=rng.choice(codes))

    return {
        "agency + 90-day range": agency_and_dates,
        "subject words, no diacritics": subject_words,
        "recipient": recipient,
    }


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(url: str, iterations: int) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(
        auditor_url(url), server_settings={"plan_cache_mode": "force_custom_plan"}
    )
    results = []
    try:
        for name, make in cases(agencies()).items():
            rng = random.Random(name)
            for _ in range(5):  # warm the cache as a running archive would be
                await search_documents(conn, make(rng), limit=20)
            samples, hits = [], []
            for _ in range(iterations):
                filters = make(rng)
                started = time.perf_counter()
                page = await search_documents(conn, filters, limit=20)
                samples.append((time.perf_counter() - started) * 1000)
                hits.append(len(page.hits))
            example = make(rng)
            query = build_search(example, limit=20)
            plan_rows = await conn.fetch("EXPLAIN (ANALYZE) " + query.text, *query.args)
            results.append(
                {
                    "search": name,
                    "iterations": iterations,
                    "p50_ms": round(statistics.median(samples), 2),
                    "p95_ms": round(percentile(samples, 95), 2),
                    "p99_ms": round(percentile(samples, 99), 2),
                    "mean_hits": round(statistics.mean(hits), 1),
                    "plan": [r[0] for r in plan_rows],
                }
            )
    finally:
        await conn.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="30 searches per kind, not 300.")
    parser.add_argument("--database-url", help="Server to use (default: the project's own).")
    parser.add_argument("--reuse", action="store_true", help="Search the loaded scratch data.")
    args = parser.parse_args()
    admin_url = args.database_url or services.database_url(load_settings())
    if args.reuse:
        url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{SCRATCH}"))
    else:
        url = asyncio.run(load(admin_url, args.documents))
    results = asyncio.run(measure(url, 30 if args.quick else 300))
    print(f"\n{args.documents} documents; latency of one page of 20, as the auditor role")
    print(f"{'search':32} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'hits':>6}")
    for r in results:
        print(
            f"{r['search']:32} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['p99_ms']:8.2f} "
            f"{r['mean_hits']:6.1f}"
        )
    for r in results:
        print(f"\n-- plan: {r['search']}\n" + "\n".join(r["plan"]))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"documents": args.documents, "results": results}, indent=2) + "\n"
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
