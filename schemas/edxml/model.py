"""The national model's header elements (the national SDK's EdXML102 classes: MessageHeader,
OtherInfo, Organization, Bussiness, StaffInfo, ResponseFor, ResponseForTask, ...), as paths:
the coverage test fails on any of them that the mapping does not carry."""

from __future__ import annotations

_ORG = ("OrganId", "OrganizationInCharge", "OrganName", "OrganAdd", "Email", "Telephone", "Fax",
        "Website")  # fmt: skip
_RESPONSE_FOR = ("OrganId", "Code", "PromulgationDate", "DocumentId")
_STAFF = ("Department", "DepartmentId", "Staff", "StaffId", "Email", "Mobile")

MODEL_ELEMENTS: tuple[str, ...] = (
    *(f"MessageHeader/From/{e}" for e in _ORG),
    *(f"MessageHeader/To/{e}" for e in _ORG),
    "MessageHeader/DocumentId",
    "MessageHeader/Code/CodeNumber",
    "MessageHeader/Code/CodeNotation",
    "MessageHeader/PromulgationInfo/Place",
    "MessageHeader/PromulgationInfo/PromulgationDate",
    "MessageHeader/DocumentType/Type",
    "MessageHeader/DocumentType/TypeDetail",
    "MessageHeader/DocumentType/TypeName",
    "MessageHeader/Subject",
    "MessageHeader/Content",
    "MessageHeader/SignerInfo/Competence",
    "MessageHeader/SignerInfo/Position",
    "MessageHeader/SignerInfo/FullName",
    "MessageHeader/DueDate",
    "MessageHeader/OtherInfo/Priority",
    "MessageHeader/OtherInfo/SphereOfPromulgation",
    "MessageHeader/OtherInfo/TyperNotation",
    "MessageHeader/OtherInfo/PromulgationAmount",
    "MessageHeader/OtherInfo/PageAmount",
    "MessageHeader/OtherInfo/Direction",
    "MessageHeader/OtherInfo/Appendixes/Appendix",
    "MessageHeader/OtherInfo/ReferenceCodes/ReferenceCode",
    "MessageHeader/SteeringType",
    "MessageHeader/ToPlaces/Place",
    *(f"MessageHeader/ResponseFor/{e}" for e in _RESPONSE_FOR),
    *(f"MessageHeader/ReplyFors/ReplyFor/{e}" for e in _RESPONSE_FOR),
    "MessageHeader/ResponseForTask/TaskCode",
    "MessageHeader/ApplicationType",
    "TraceHeaderList/TraceHeader/OrganId",
    "TraceHeaderList/TraceHeader/Timestamp",
    "TraceHeaderList/Bussiness/DocumentId",
    "TraceHeaderList/Bussiness/BussinessDocType",
    "TraceHeaderList/Bussiness/BussinessDocReason",
    "TraceHeaderList/Bussiness/Paper",
    *(f"TraceHeaderList/Bussiness/StaffInfo/{e}" for e in _STAFF),
    "TraceHeaderList/Bussiness/BussinessDocumentInfo/DocumentInfo",
    "TraceHeaderList/Bussiness/BussinessDocumentInfo/DocumentReceiver",
    "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver/OrganId",
    "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver/ReceiverType",
    "TraceHeaderList/Bussiness/ReplacementInfoList/ReplacementInfo/DocumentId",
    "TraceHeaderList/Bussiness/ReplacementInfoList/ReplacementInfo/OrganIdList/OrganId",
)

STATUS_MODEL_ELEMENTS: tuple[str, ...] = (
    *(f"MessageHeader/From/{e}" for e in _ORG),
    *(f"MessageHeader/ResponseFor/{e}" for e in _RESPONSE_FOR),
    *(f"MessageHeader/StaffInfo/{e}" for e in _STAFF),
    "MessageHeader/StatusCode",
    "MessageHeader/Description",
    "MessageHeader/Timestamp",
)
