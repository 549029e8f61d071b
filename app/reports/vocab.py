"""Kinds of courier problem reports, with zh-CN and English labels."""

from __future__ import annotations

from app.stations.vocab import Term

KINDS: tuple[Term, ...] = (
    Term("closed_when_should_be_open", "应开放却关门", "Closed when it should be open"),
    Term("amenity_missing_or_broken", "设施缺失或损坏", "Amenity missing or broken"),
    Term("wrong_location", "位置不对", "Wrong location"),
    Term("other", "其他问题", "Other"),
)
REPORT_KINDS: tuple[str, ...] = tuple(t.code for t in KINDS)
STATUSES: tuple[Term, ...] = (
    Term("open", "待处理", "Open"),
    Term("acknowledged", "已受理", "Acknowledged"),
    Term("resolved", "已解决", "Resolved"),
    Term("rejected", "未采纳", "Rejected"),
)
REPORT_STATUSES: tuple[str, ...] = tuple(t.code for t in STATUSES)
#: Statuses that still wait for the station's people (counted as open reports).
OPEN_STATUSES: tuple[str, ...] = ("open", "acknowledged")
#: Longest comment stored (characters); longer ones are rejected, not cut.
MAX_COMMENT = 500
#: Statuses a manager may answer with (a report goes open → acknowledged → resolved/rejected).
ANSWER_STATUSES: tuple[str, ...] = ("acknowledged", "resolved", "rejected")
#: Longest note a manager writes back (characters).
MAX_NOTE = 500
KIND_LABELS: dict[str, Term] = {t.code: t for t in KINDS}
STATUS_LABELS: dict[str, Term] = {t.code: t for t in STATUSES}
