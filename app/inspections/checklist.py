"""The inspection checklist: Zhejiang's "八有" standard by default, replaceable per deployment
(`YIZHAN_INSPECTION_CHECKLIST`, a JSON list of {code, zh, en}). Pure: no I/O.

The eight items are those of the basic station standard in Zhejiang's 《全省户外劳动者服务站点
建设三年行动方案（2024—2026年）》 (浙江省总工会 and four provincial departments, 2024):
有统一的标识名称、有合适的场地标准、有健全的服务设施、有完善的服务功能、有规范的管理制度、
有线上地图可查、有宣传教育功能、有暖心服务活动.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.stations.vocab import Term

BA_YOU: tuple[Term, ...] = (
    Term("signage", "有统一的标识名称", "Standard sign and name"),
    Term("premises", "有合适的场地标准", "Suitable premises"),
    Term("facilities", "有健全的服务设施", "Complete facilities"),
    Term("services", "有完善的服务功能", "Full range of services"),
    Term("management", "有规范的管理制度", "Proper management rules"),
    Term("online_map", "有线上地图可查", "Findable on online maps"),
    Term("publicity", "有宣传教育功能", "Information and education"),
    Term("activities", "有暖心服务活动", "Regular care activities"),
)


def checklist(configured: Sequence[dict[str, str]] | None) -> tuple[Term, ...]:
    """The checklist in force: the configured items (validated by app.config), else "八有"."""
    if not configured:
        return BA_YOU
    return tuple(Term(i["code"], i["zh"], i["en"]) for i in configured)
