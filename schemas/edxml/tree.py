"""edXML bytes <-> element trees: junk before the declaration, namespaces, leaf paths."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from schemas.errors import SchemaError

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
HEADER_PARTS = ("MessageHeader", "TraceHeaderList")

# No network, no entity expansion: an edXML file is data from outside.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def split_junk(data: bytes) -> tuple[bytes, bytes]:
    """(junk before the XML, the XML): some national systems write bytes before '<?xml'."""
    start = data.find(b"<")
    if start < 0:
        raise SchemaError("malformed", "edXML: no XML in the file")
    return data[:start], data[start:]


def parse(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SchemaError("malformed", f"edXML: {exc}") from exc


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


def children(el: etree._Element) -> Iterator[etree._Element]:
    """Element children only (no comments or processing instructions)."""
    for child in el:
        if isinstance(child.tag, str):
            yield child


def find(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return next((c for c in children(el) if local(c) == name), None)


def find_all(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in children(el) if local(c) == name]


def text(el: etree._Element | None, name: str) -> str | None:
    """The text of a child (an empty element gives ''), None when absent."""
    child = find(el, name)
    return None if child is None else (child.text or "")


def header(root: etree._Element) -> etree._Element:
    env = find(root, "edXMLEnvelope")
    head = find(env, "edXMLHeader")
    if head is None or find(head, "MessageHeader") is None:
        raise SchemaError("malformed", "edXML: no edXMLEnvelope/edXMLHeader/MessageHeader")
    return head


def segment(el: etree._Element) -> str:
    """'To' for the first To among its siblings, 'To[1]' for the second, and so on."""
    parent = el.getparent()
    name = local(el)
    n = 0 if parent is None else [local(c) for c in children(parent)][: _index(el)].count(name)
    return name if n == 0 else f"{name}[{n}]"


def _index(el: etree._Element) -> int:
    parent = el.getparent()
    return 0 if parent is None else list(children(parent)).index(el)


def path_of(el: etree._Element, base: etree._Element) -> str:
    parts = []
    while el is not None and el is not base:
        parts.append(segment(el))
        el = el.getparent()
    return "/".join(reversed(parts))


def header_leaves(root: etree._Element) -> list[tuple[str, str]]:
    """Every leaf element of MessageHeader and TraceHeaderList as (path, text), sorted: what
    'lossless' is measured on (the XML-DSig Signature is not header data)."""
    head = header(root)
    out = []
    for part in HEADER_PARTS:
        top = find(head, part)
        if top is None:
            continue
        for el in top.iter():
            if isinstance(el.tag, str) and not list(children(el)):
                out.append((path_of(el, head), el.text or ""))
    return sorted(out)


def element_names(root: etree._Element) -> set[str]:
    """Distinct header element paths without indexes, e.g. 'MessageHeader/To/OrganId'."""
    return {_unindexed(p) for p, _ in header_leaves(root)}


def _unindexed(path: str) -> str:
    return "/".join(s.split("[", 1)[0] for s in path.split("/"))


def ensure(base: etree._Element, path: str) -> etree._Element:
    """The element at an indexed path below ``base``, created (with its parents) if absent."""
    el = base
    for seg in path.split("/"):
        name, _, rest = seg.partition("[")
        n = int(rest.rstrip("]")) if rest else 0
        same = find_all(el, name)
        while len(same) <= n:
            same.append(etree.SubElement(el, f"{{{NS}}}{name}"))
        el = same[n]
    return el


def sub(parent: etree._Element, name: str, value: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    if value is not None:
        el.text = value
    return el


def opt(parent: etree._Element, name: str, value: str | None) -> None:
    """A child only when the value is present ('' gives an empty element)."""
    if value is not None:
        sub(parent, name, value)


def serialise(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
