"""The audit search benchmark's documents: Vietnamese subjects, bodies and agency names, made
from templates in the register of Hà Nội's administrative documents (Căn cứ..., the purpose,
the tasks, who reports to whom), with diacritics, reproducible from a seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

START, YEARS = datetime(2019, 1, 1, tzinfo=UTC), 7

KINDS = [  # (prefix, abbreviation, notation suffix, type name)
    ("Quyết định về việc", "QĐ", "QĐ-UBND", "Quyết định"),
    ("Kế hoạch", "KH", "KH-UBND", "Kế hoạch"),
    ("Báo cáo", "BC", "BC-UBND", "Báo cáo"), ("Thông báo", "TB", "TB-VP", "Thông báo"),
    ("Công văn về việc", "", "UBND-VP", "Công văn"), ("Tờ trình", "TTr", "TTr-SNV", "Tờ trình"),
    ("Chỉ thị về", "CT", "CT-UBND", "Chỉ thị"), ("Hướng dẫn", "HD", "HD-STC", "Hướng dẫn"),
    ("Giấy mời họp về", "GM", "GM-VP", "Giấy mời"), ("Đề án", "ĐA", "ĐA-UBND", "Đề án"),
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
    "năm {y}", "giai đoạn 2021-2025", "quý {q} năm {y}", "trên địa bàn thành phố",
    "trên địa bàn quận {d}", "tại huyện {d}", "6 tháng đầu năm {y}", "đợt {q}", "",
]  # fmt: skip
PLACES = [
    "Ba Đình", "Hoàn Kiếm", "Hai Bà Trưng", "Đống Đa", "Tây Hồ", "Cầu Giấy", "Thanh Xuân",
    "Hoàng Mai", "Long Biên", "Gia Lâm", "Đông Anh", "Sóc Sơn", "Thanh Trì", "Mê Linh",
    "Chương Mỹ", "Ba Vì", "Thanh Oai", "Quốc Oai", "Mỹ Đức", "Ứng Hòa", "Phú Xuyên",
]  # fmt: skip
MINISTRIES = [
    "Bộ Nội vụ", "Bộ Tài chính", "Bộ Kế hoạch và Đầu tư", "Bộ Thông tin và Truyền thông",
    "Bộ Tư pháp", "Bộ Y tế", "Bộ Giáo dục và Đào tạo", "Bộ Xây dựng", "Bộ Công Thương",
    "Bộ Tài nguyên và Môi trường", "Bộ Lao động - Thương binh và Xã hội", "Văn phòng Chính phủ",
]  # fmt: skip
DEPARTMENTS = [
    "Văn phòng Ủy ban nhân dân thành phố", "Sở Nội vụ", "Sở Tài chính", "Sở Kế hoạch và Đầu tư",
    "Sở Thông tin và Truyền thông", "Sở Tư pháp", "Sở Y tế", "Sở Giáo dục và Đào tạo",
    "Sở Xây dựng", "Sở Công Thương", "Sở Tài nguyên và Môi trường", "Sở Giao thông vận tải",
    "Sở Lao động - Thương binh và Xã hội", "Sở Văn hóa và Thể thao", "Sở Du lịch",
    "Sở Nông nghiệp và Phát triển nông thôn", "Sở Quy hoạch - Kiến trúc", "Thanh tra thành phố",
]  # fmt: skip

# The body: a legal basis or two, the purpose, tasks, and who reports back by when. Boilerplate
# (the legal bases, the closings) recurs in a third of the documents, as in real ones; tasks are
# a verb, an object and the topic (a few thousand combinations); set phrases such as Plan 190's
# "phấn đấu duy trì 100% thủ tục hành chính" are rare (SPECIAL, about 1 document in 100 each).
BASES = [
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;",
    "Căn cứ Luật sửa đổi, bổ sung một số điều của Luật Tổ chức Chính phủ và Luật Tổ chức "
    "chính quyền địa phương ngày 22 tháng 11 năm 2019;",
    "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư;",
    "Căn cứ Nghị quyết số 17/NQ-CP ngày 07 tháng 3 năm 2019 của Chính phủ về một số nhiệm vụ, "
    "giải pháp trọng tâm phát triển Chính phủ điện tử giai đoạn 2019 - 2020, định hướng đến 2025;",
    "Căn cứ Nghị định số 61/2018/NĐ-CP ngày 23 tháng 4 năm 2018 của Chính phủ về thực hiện cơ chế "
    "một cửa, một cửa liên thông trong giải quyết thủ tục hành chính;",
    "Căn cứ Nghị định số 09/2019/NĐ-CP ngày 24 tháng 01 năm 2019 của Chính phủ quy định về chế độ "
    "báo cáo của cơ quan hành chính nhà nước;",
    "Căn cứ Chương trình công tác năm {y} của Ủy ban nhân dân thành phố;",
    "Xét đề nghị của Giám đốc {dept} tại Tờ trình số {n}/TTr ngày {dd} tháng {mm} năm {y},",
]
PURPOSES = [
    "Nhằm nâng cao hiệu quả công tác {topic} {qualifier}, Ủy ban nhân dân ban hành văn bản này "
    "với các nội dung sau:",
    "Để triển khai kịp thời, đồng bộ nhiệm vụ {topic}, bảo đảm đúng tiến độ và chất lượng, các "
    "cơ quan, đơn vị thực hiện các nội dung sau:",
    "Thực hiện chỉ đạo của Thành ủy về {topic}, Ủy ban nhân dân yêu cầu các cơ quan, đơn vị "
    "tập trung thực hiện tốt các nhiệm vụ sau:",
    "Tiếp tục đẩy mạnh {topic}, nâng cao chất lượng phục vụ người dân và doanh nghiệp, cụ thể "
    "như sau:",
    "Trên cơ sở kết quả thực hiện {topic} thời gian qua, để khắc phục những tồn tại, hạn chế, "
    "các cơ quan, đơn vị tập trung thực hiện:",
]
VERBS = [
    "Rà soát", "Kiểm tra", "Đôn đốc", "Tổng hợp", "Hướng dẫn", "Triển khai", "Đẩy mạnh",
    "Tăng cường", "Xây dựng", "Hoàn thiện", "Đánh giá", "Theo dõi", "Chấn chỉnh", "Củng cố",
    "Nâng cao chất lượng", "Bố trí kinh phí cho", "Tuyên truyền", "Công khai", "Thẩm định",
    "Phê duyệt", "Giám sát", "Phối hợp thực hiện", "Đề xuất sửa đổi", "Tập huấn", "Số hóa",
]  # fmt: skip
OBJECTS = [
    "kế hoạch", "hồ sơ", "danh mục", "quy trình", "số liệu", "kết quả", "tiến độ", "nhiệm vụ",
    "chỉ tiêu", "phương án", "dự toán", "cơ sở dữ liệu", "đội ngũ cán bộ", "trang thiết bị",
    "quy chế phối hợp", "mô hình điểm", "đề án", "hạ tầng", "biểu mẫu", "nguồn lực",
]  # fmt: skip
CLAUSES = [
    "", "", "", " bảo đảm đúng tiến độ", " trên địa bàn quận {place}", " tại huyện {place}",
    " trước ngày {dd}/{mm}/{y}", " theo phân cấp hiện hành", ", báo cáo kết quả hằng quý",
    ", công khai trên Cổng thông tin điện tử của thành phố", " từ nguồn ngân sách năm {y}",
    ", phấn đấu đạt {pct}% kế hoạch năm", " cho cán bộ cấp xã, phường, thị trấn",
    ", phối hợp với {dept}", ", không để phát sinh điểm nóng",
]  # fmt: skip
SPECIAL = [
    "Phấn đấu duy trì {pct}% thủ tục hành chính đủ điều kiện được cung cấp trực tuyến mức độ 3, 4.",
    "Đẩy mạnh cải cách hành chính, trọng tâm là cải cách thủ tục hành chính.",
    "Kiện toàn bộ phận một cửa, nâng cao chất lượng tiếp nhận và trả kết quả giải quyết hồ sơ.",
    "Gửi, nhận văn bản điện tử có ký số qua trục liên thông văn bản của thành phố "
    "(trừ văn bản mật).",
    "Kết nối, liên thông phần mềm quản lý văn bản của các cơ quan với trục liên thông quốc gia.",
    "Cung cấp dịch vụ công trực tuyến mức độ 3, 4; tỷ lệ hồ sơ trực tuyến đạt từ {pct}% trở lên.",
    "Huy động các nguồn lực xã hội hóa tại huyện {place}.",
    "Xử lý nghiêm các trường hợp vi phạm; không để phát sinh khiếu kiện đông người.",
]
CLOSINGS = [
    "Các sở, ban, ngành, Ủy ban nhân dân các quận, huyện, thị xã căn cứ nội dung trên xây dựng "
    "kế hoạch cụ thể, báo cáo kết quả về Ủy ban nhân dân thành phố (qua {dept}) trước ngày "
    "{dd}/{mm}/{y}.",
    "Giao {dept} chủ trì, theo dõi, đôn đốc, tổng hợp kết quả thực hiện, báo cáo Ủy ban nhân "
    "dân thành phố theo quy định.",
    "Trong quá trình thực hiện, nếu có khó khăn, vướng mắc, các đơn vị phản ánh về {dept} để "
    "tổng hợp, báo cáo Ủy ban nhân dân thành phố xem xét, giải quyết.",
]


def agencies(count: int = 640) -> list[str]:
    """Ministries (G), the city's departments and districts (H26), and their units."""
    codes = [f"000.00.00.G{i:02d}" for i in range(1, 31)]
    codes += [f"000.00.{i:02d}.H26" for i in range(0, 80)]
    codes += [f"000.{u:02d}.{d:02d}.H26" for d in range(1, 80) for u in range(1, 99)]
    return codes[:count]


def agency_name(code: str) -> str:
    """A plausible name for a code: ministry, department or district, ward of a district."""
    unit, district, letter = int(code[4:6]), int(code[7:9]), code[10:]
    place = PLACES[district % len(PLACES)]
    if letter.startswith("G"):
        return MINISTRIES[int(letter[1:]) % len(MINISTRIES)]
    if district == 0:
        return "Ủy ban nhân dân thành phố Hà Nội"
    if unit == 0:
        if district < 31:
            return f"{DEPARTMENTS[district % len(DEPARTMENTS)]} thành phố Hà Nội"
        return f"Ủy ban nhân dân quận {place}"
    return f"Ủy ban nhân dân phường {unit} quận {place}"


def _fill(template: str, rng: random.Random, topic: str) -> str:
    return template.format(
        topic=topic,
        qualifier=rng.choice(QUALIFIERS).format(y=rng.randint(2019, 2025), q="I", d="Ba Đình"),
        y=rng.randint(2019, 2025),
        pct=rng.choice((80, 90, 95, 100)),
        place=rng.choice(PLACES),
        dept=rng.choice(DEPARTMENTS),
        n=rng.randint(1, 999),
        dd=f"{rng.randint(1, 28):02d}",
        mm=f"{rng.randint(1, 12):02d}",
    )


def task(rng: random.Random, topic: str) -> str:
    if rng.random() < 0.015:
        return _fill(rng.choice(SPECIAL), rng, topic)
    clause = _fill(rng.choice(CLAUSES), rng, topic)
    return f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} về {topic}{clause}."


def body(rng: random.Random, topic: str) -> str:
    """A few paragraphs: 600-2 000 characters, one document in thirty about ten times that."""
    tasks = rng.randint(3, 7) if rng.random() < 0.97 else rng.randint(40, 70)
    parts = [_fill(b, rng, topic) for b in rng.sample(BASES, rng.randint(1, 3))]
    parts.append(_fill(rng.choice(PURPOSES), rng, topic))
    other = rng.choice(TOPICS)
    parts += [
        f"{i}. " + task(rng, topic if rng.random() < 0.7 else other) for i in range(1, tasks + 1)
    ]
    parts.append(_fill(rng.choice(CLOSINGS), rng, topic))
    return "\n".join(parts)


def subject(rng: random.Random) -> tuple[str, str, str, str, str]:
    prefix, abbr, notation, type_name = rng.choice(KINDS)
    topic = rng.choice(TOPICS)
    tail = rng.choice(QUALIFIERS).format(
        y=rng.randint(2019, 2025), q=rng.choice(["I", "II", "III", "IV"]), d=rng.choice(PLACES)
    )
    extra = f" và {rng.choice(TOPICS)}" if rng.random() < 0.3 else ""
    return f"{prefix} {topic}{extra} {tail}".strip(), abbr, notation, type_name, topic


COLUMNS = [
    "document_id", "payload_type", "sender", "recipients", "number", "notation", "doc_type",
    "doc_type_name", "subject", "promulgation_date", "submitted_at", "routing_outcome", "body",
    "party_names",
]  # fmt: skip


def documents(n: int, codes: list[str], seed: int = 190) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    names = {c: agency_name(c) for c in codes}
    # Volumes are skewed: the city committee sends far more than a commune does.
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(codes))]
    senders = rng.choices(codes, weights, k=n)
    span = YEARS * 365 * 86400
    # In submission order, as the archiver appends them: the table is in time order, as an
    # archive's is.
    times = sorted(rng.randrange(span) for _ in range(n))
    for i in range(n):
        text, abbr, notation, type_name, topic = subject(rng)
        sender = senders[i]
        at = START + timedelta(seconds=times[i])
        k = rng.choice((1, 1, 2, 3, 5)) if rng.random() < 0.97 else rng.randint(10, 30)
        recipients = rng.sample(codes, k)
        outcome = rng.choices(("routed", "rejected", "pending"), (97, 2, 1))[0]
        number = str(rng.randint(1, 9999))
        parties = "\n".join(dict.fromkeys(names[c] for c in (sender, *recipients)))
        yield (
            f"{sender},{at:%Y/%m/%d},{number}/{notation}#{i}", "OFFICIAL_DOCUMENT", sender,
            recipients, number, notation, abbr, type_name, text, at.date(), at, outcome,
            body(rng, topic), parties,
        )  # fmt: skip
