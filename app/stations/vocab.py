"""Fixed vocabularies of the station domain, each entry with a zh-CN and an English label.

The database enforces the same lists with CHECK constraints (see the initial migration), so a
value outside them can never be stored, whichever path writes it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Term:
    """One vocabulary entry: the stable machine code and its labels."""

    code: str
    zh: str
    en: str


AMENITIES: tuple[Term, ...] = (
    Term("drinking_water", "饮用水", "Drinking water"),
    Term("hot_water", "热水", "Hot water"),
    Term("microwave", "微波炉", "Microwave"),
    Term("fridge", "冰箱", "Fridge"),
    Term("phone_charging", "手机充电", "Phone charging"),
    Term("ebike_charging", "电动车充电/换电", "E-bike charging or battery swap"),
    Term("toilet", "卫生间", "Toilet"),
    Term("air_conditioning", "空调", "Air conditioning"),
    Term("heating", "取暖", "Heating"),
    Term("seating", "休息座椅", "Seats / rest area"),
    Term("first_aid", "急救药箱", "First-aid kit"),
    Term("wifi", "无线网络", "Wi-Fi"),
    Term("rain_shelter", "避雨", "Rain shelter"),
    Term("lockers", "储物柜", "Lockers"),
    Term("accessible_entrance", "无障碍入口", "Accessible entrance"),
)

HOST_TYPES: tuple[Term, ...] = (
    Term("union_office", "工会", "Union office"),
    Term("community", "社区", "Community centre"),
    Term("bank", "银行网点", "Bank branch"),
    Term("fuel_station", "加油站", "Fuel station"),
    Term("telecom_shop", "通信营业厅", "Telecom shop"),
    Term("sanitation_depot", "环卫工作站", "Sanitation depot"),
    Term("mall", "商场", "Shopping mall"),
    Term("enterprise", "企业", "Enterprise"),
    Term("other", "其他", "Other"),
)

ACCESS: tuple[Term, ...] = (
    Term("outdoor_workers", "户外劳动者", "All outdoor workers"),
    Term("drivers_only", "仅限司机", "Drivers only"),
    Term("public", "公众开放", "Open to the public"),
)

STATUSES: tuple[Term, ...] = (
    Term("planned", "筹建中", "Planned"),
    Term("open", "正常开放", "Open"),
    Term("temporarily_closed", "暂停开放", "Temporarily closed"),
    Term("closed", "已关闭", "Closed"),
    Term("duplicate", "重复（已合并）", "Duplicate (merged)"),
)

AMENITY_CODES: tuple[str, ...] = tuple(t.code for t in AMENITIES)
HOST_TYPE_CODES: tuple[str, ...] = tuple(t.code for t in HOST_TYPES)
ACCESS_CODES: tuple[str, ...] = tuple(t.code for t in ACCESS)
STATUS_CODES: tuple[str, ...] = tuple(t.code for t in STATUSES)

#: Statuses a courier is shown by default: permanently closed stations are history, not answers.
DEFAULT_VISIBLE_STATUSES: tuple[str, ...] = ("open", "temporarily_closed")


def unknown_codes(values: list[str] | tuple[str, ...], vocabulary: tuple[str, ...]) -> list[str]:
    """Return the values that are not in the vocabulary, in their given order."""
    known = set(vocabulary)
    return [v for v in values if v not in known]
