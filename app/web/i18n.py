"""User-facing text of the pages, in zh-CN and English."""

from __future__ import annotations

from typing import Any

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "驿站 · 附近的户外劳动者服务站点",
        "other_lang": "English",
        "lat": "纬度",
        "lon": "经度",
        "locate": "用我的位置",
        "need": "需要的设施（全部满足）：",
        "open_now": "现在开放",
        "search": "查找",
        "found": "找到 {n} 个站点（按距离排序）",
        "is_open": "开放中",
        "is_closed": "未开放",
        "unknown": "开放时间未知",
        "reports": "{n} 条问题反馈待处理",
        "confirmed_today": "今天已确认",
        "confirmed_ago": "{n} 天前已确认",
        "confirmed_ago_1": "1 天前已确认",
        "stale": "信息可能已过期",
        "amap": "高德导航",
        "baidu": "百度导航",
        "footer": "示例数据仅供演示 · 地图数据 © OpenStreetMap 贡献者",
        "bad_point": "请输入有效的经纬度（WGS-84）。",
        "no_window": "开放时间数据尚未准备好，请稍后再试。",
        "m": "{d} 米",
        "km": "{d} 公里",
        "map_title": "驿站地图 · 15 分钟服务圈",
        "map_colour_by": "着色",
        "map_colour_open": "是否开放",
        "map_colour_level": "星级",
        "map_level_min": "最低星级",
        "map_level_any": "不限",
        "map_level_none": "未评级",
        "map_hint": "点地图看从该点出发的可达范围；点站点看它的服务范围。",
        "mode": "出行方式",
        "walk": "步行",
        "ebike": "电动车",
        "car": "汽车",
        "min": "分钟",
        "open": "开放中",
        "closed": "未开放",
        "service_area": "5/10/15 分钟服务范围",
        "loading": "计算中…",
        "no_leaflet": "地图组件尚未下载：请运行 yizhan web assets（scripts/demo.sh 会自动运行）。",
        # planner page (/planner) and its map (app/web/maps.py)
        "planner_title": "驿站规划 · 服务圈覆盖",
        "pl_intro": "每个六边形是一块有街道的区域，颜色表示从那里出发到最近的开放驿站要几分钟。"
        "需求按{weight}计。",
        "pl_no_oneway": "此路网无单行道数据，未考虑单行限制：电动车和汽车的时间可能偏短"
        "（步行不受单行限制）。",
        "pl_target": "目标（分钟）",
        "pl_district": "范围",
        "pl_all": "全市",
        "pl_weight": "需求按",
        "pl_weight_road": "街道长度",
        "pl_weight_area": "面积",
        "pl_demand_group": "导入的需求图层",
        "pl_demand_layer": "{name}：{description}（{unit}）",
        "pl_demand_layer_bare": "{name}（{unit}）",
        "pl_resolution": "网格",
        "pl_res_8": "粗（约 0.74 km²）",
        "pl_res_9": "中（约 0.1 km²）",
        "pl_res_10": "细（约 0.015 km²）",
        "pl_suggest": "建议新站点",
        "pl_none": "不显示",
        "pl_show": "更新",
        "pl_map_link": "站点地图",
        "pl_computing": "正在计算覆盖情况（{stage} {done}/{total}）……本页几秒后自动刷新。",
        "pl_no_network": "还没有加载道路网络，无法计算步行、骑行或驾车时间。请运行 "
        "yizhan network demo（武汉示例）或 yizhan network import 文件。",
        "pl_headline": "{mode} {m} 分钟内可到达驿站的需求：{share}（{stations} 个开放驿站；"
        "一半的需求在 {median} 分钟内可到达）",
        "pl_downloads": "下载",
        "pl_dl_districts_csv": "分区表 CSV",
        "pl_dl_districts_geojson": "分区表 GeoJSON",
        "pl_dl_cells_csv": "网格 CSV",
        "pl_dl_cells_geojson": "网格 GeoJSON",
        "pl_dl_gaps_csv": "缺口分块 CSV",
        "pl_dl_gaps_geojson": "缺口分块 GeoJSON",
        "pl_dl_map": "离线地图 HTML",
        "pl_table_title": "分区统计",
        "pl_col_district": "区",
        "pl_col_area": "街道网格面积 km²",
        "pl_col_district_area": "全区面积 km²",
        "pl_col_network_share": "在道路网络内",
        "pl_status_partial": "部分在路网内",
        "pl_status_outside": "在路网之外",
        "pl_extent_note": "全区面积按行政区边界在椭球面上计算；覆盖统计只包括有街道的网格"
        "（“街道网格面积”）。道路网络范围：{box}（其节点的凸包，{area} km²），"
        "各区合计 {share} 的面积在其中；在其中不足 {partial} 的区标为“部分在路网内”。",
        "pl_col_demand": "需求（{u}）",
        "pl_col_within": "{m} 分钟内需求",
        "pl_col_area_within": "{m} 分钟内面积",
        "pl_col_stations": "开放驿站",
        "pl_col_per10k": "每万{u}驿站数",
        "pl_col_dense": "过密网格",
        "pl_row_all": "全市合计",
        "pl_row_outside": "不在任何区内的网格：{cells} 个，需求 {demand} {u}",
        "pl_no_districts": "尚未加载行政区边界（yizhan districts demo 或 import），"
        "表中只有全市合计。",
        "pl_notes": "说明：需求占比＝该时间内可到达驿站的网格需求之和 ÷ 全部需求；"
        "过密网格＝{dm} 分钟内可到达 {n} 个及以上驿站（半径按出行方式取约 400 米的路程：步行 5、"
        "电动车 2、汽车 1 分钟）；可考虑调整的驿站＝单独关闭后其服务需求只有不到 {p}% 失去 {m} "
        "分钟覆盖，且以它为最近驿站的需求改去下一站平均多用的时间不超过中位驿站的 {r}；"
        "相邻站点＝两站相互 {pm} 分钟内可达。",
        "pl_tiles": "底图",
        "pl_band": "{lo}–{hi} 分钟",
        "pl_gap_band": "超过 {m} 分钟或不可达",
        "pl_demand": "需求",
        "pl_share_demand": "占需求",
        "pl_area": "面积",
        "pl_cells": "网格数",
        "pl_layer_bands": "覆盖（按到达时间）",
        "pl_layer_districts": "行政区边界",
        "pl_dense_title": "过密区域",
        "pl_dense_n": "{m} 分钟内可到达的驿站数",
        "pl_dense_why": "{m} 分钟内可到达 {n} 个及以上驿站：可考虑把新站点放到别处。",
        "pl_layer_dense": "过密网格（≥{n} 站 / {m} 分钟）：{c} 个",
        "pl_unreachable": "不可达",
        "pl_gap_title": "缺口 第 {rank} 名",
        "pl_uncovered": "未覆盖需求",
        "pl_max_minutes": "最远时间",
        "pl_in_districts": "所在区",
        "pl_layer_gaps": "服务缺口：{n} 处，按区和一个站点的服务范围拆成 {p} 块",
        "pl_station_id": "编号",
        "pl_covered": "{m} 分钟内服务需求",
        "pl_exclusive": "其中只有本站服务",
        "pl_loss": "关闭后失去覆盖",
        "pl_redundant": "可考虑调整",
        "pl_redundant_why": "单独关闭本站，失去 {m} 分钟覆盖的需求不到其服务需求的 {p}%，"
        "且以本站为最近驿站的需求改去下一站平均多用的时间不超过中位驿站（{med} 分钟）的 {r}："
        "附近其他驿站已覆盖这里。",
        "pl_backup": "关闭后最近需求平均多用（中位驿站 {med} 分钟）",
        "pl_small_gaps": "其余 {n} 处较小的缺口（前 {k} 处单独显示）",
        "pl_small_pieces": "其余 {n} 块较小的缺口（前 {k} 块单独显示）",
        "pl_piece_title": "缺口 {gap} · 第 {rank} 块",
        "pl_in_district": "所在区",
        "pl_outside_districts": "不在任何区内",
        "pl_unreachable_cells": "不可达网格",
        "pl_site_gain": "一个新站点最多新增覆盖",
        "pl_site_in_piece": "可覆盖本块需求",
        "pl_gaps_title": "缺口：一个新站点能解决多少（前 {n} 块）",
        "pl_gaps_intro": "缺口（{m} 分钟内到不了驿站的连片网格，共 {g} 处）先按区拆开，再切成"
        "一个新站点{mode} {m} 分钟大致能服务的大小（不超过 {cap} km²，单个网格除外），共 {p} 块，"
        "按未覆盖需求排序。“一个新站点”是在该块路网上找到的最佳单个位置（现有驿站不变）："
        "它新增的 {m} 分钟覆盖需求，以及其中属于本块的比例。",
        "pl_gaps_none": "没有缺口：全部需求都在 {m} 分钟内。",
        "pl_gaps_unreachable": "缺口中有 {u} 个网格（分布在 {k} 块里）不可达：{off} 米内没有{mode}"
        "可用的道路，任何驿站（包括新站点）都到不了；“最远时间”只计其余可到达的网格，"
        "不可达网格单独计数。",
        "pl_gcol_rank": "块",
        "pl_gcol_gap": "所属缺口",
        "pl_gcol_district": "区",
        "pl_gcol_uncovered": "未覆盖需求（{u}）",
        "pl_gcol_share": "占需求",
        "pl_gcol_area": "面积 km²",
        "pl_gcol_max": "最远时间（分钟）",
        "pl_gcol_unreach": "不可达网格",
        "pl_gcol_gain": "一个新站点新增覆盖（{u}）",
        "pl_gcol_in_piece": "可覆盖本块",
        "pl_gcol_site": "位置（WGS-84 经度, 纬度）",
        "pl_site_where": "新站位置",
        "pl_gaps_no_site": "本块没有可用道路",
        "pl_pair_title": "相邻驿站",
        "pl_pair_why": "两站相互 {m} 分钟内可达。",
        "pl_layer_pairs": "相邻驿站（相互 {m} 分钟内）：{n} 对",
        "pl_layer_stations": "开放驿站：{n} 个",
        "pl_layer_redundant": "可考虑调整的驿站（关闭损失 < {p}%，多用时间 ≤ 中位的 {r}）：{n} 个",
        "pl_site_title": "建议新站点 {rank}",
        "pl_gain": "新增 {m} 分钟覆盖需求",
        "pl_gain_alone": "若只建这一处可新增",
        "pl_covered_after": "建成前 {n} 处后覆盖率",
        "pl_near_station": "最近的现有驿站",
        "pl_site_weak": "新增覆盖不到第 1 处建议站点的 {p}% 或全部需求的 0.1%：价值较低，"
        "预算用在别处（其他区、其他出行方式）更有效。",
        "pl_site_marginal": "新增覆盖已扣除前 {n} 处建议站点覆盖的部分。",
        "pl_layer_sites": "建议新站点：{n} 个",
        "pl_legend_title": "{mode} 到最近驿站的时间（目标 {m} 分钟）",
        "pl_legend_share": "{m} 分钟内需求覆盖率",
        "pl_sym_station": "开放驿站（圆圈中的数字为该处站点数）",
        "pl_sym_redundant": "可考虑调整的驿站（默认隐藏）",
        "pl_sym_pair": "相邻驿站",
        "pl_sym_dense": "过密网格（默认隐藏）",
        "pl_sym_site": "建议新站点（按建议顺序编号；灰色：价值较低）",
        "pl_legend_unit": "右侧百分比为需求占比；需求单位：{u}",
    },
    "en": {
        "title": "yizhan · rest stations for outdoor workers nearby",
        "other_lang": "中文",
        "lat": "Latitude",
        "lon": "Longitude",
        "locate": "Use my location",
        "need": "Needs (all of):",
        "open_now": "Open now",
        "search": "Find",
        "found": "{n} stations, nearest first",
        "is_open": "Open",
        "is_closed": "Closed",
        "unknown": "Hours unknown",
        "reports": "{n} open problem reports",
        "confirmed_today": "confirmed today",
        "confirmed_ago": "confirmed {n} days ago",
        "confirmed_ago_1": "confirmed 1 day ago",
        "stale": "may be out of date",
        "amap": "Amap",
        "baidu": "Baidu Maps",
        "footer": "Sample data for the demo · map data © OpenStreetMap contributors",
        "bad_point": "Please enter a valid latitude and longitude (WGS-84).",
        "no_window": "Opening-hours data is not ready yet; please try again shortly.",
        "m": "{d} m",
        "km": "{d} km",
        "map_title": "Station map · 15-minute service circle",
        "map_colour_by": "Colour by",
        "map_colour_open": "open now",
        "map_colour_level": "star level",
        "map_level_min": "Minimum level",
        "map_level_any": "any",
        "map_level_none": "not rated",
        "map_hint": "Click the map for what is reachable from there; click a station for its "
        "service area.",
        "mode": "Travel by",
        "walk": "walking",
        "ebike": "e-bike",
        "car": "car",
        "min": "min",
        "open": "Open",
        "closed": "Closed",
        "service_area": "5/10/15-minute service area",
        "loading": "Computing…",
        "no_leaflet": "The map library is not downloaded yet: run `yizhan web assets` "
        "(scripts/demo.sh does it).",
        # planner page (/planner) and its map (app/web/maps.py)
        "planner_title": "yizhan planning · service-circle coverage",
        "pl_intro": "Each hexagon is an area with streets, coloured by the minutes from there "
        "to the nearest open station. Demand is counted by {weight}.",
        "pl_no_oneway": "This network has no one-way data, so one-way rules are not modelled: "
        "e-bike and car times may be too short (walking is not bound by them).",
        "pl_target": "Target (min)",
        "pl_district": "Area",
        "pl_all": "Whole city",
        "pl_weight": "Demand by",
        "pl_weight_road": "street length",
        "pl_weight_area": "area",
        "pl_demand_group": "Imported demand layers",
        "pl_demand_layer": "{name}: {description} ({unit})",
        "pl_demand_layer_bare": "{name} ({unit})",
        "pl_resolution": "Grid",
        "pl_res_8": "coarse (~0.74 km²)",
        "pl_res_9": "medium (~0.1 km²)",
        "pl_res_10": "fine (~0.015 km²)",
        "pl_suggest": "Suggest new sites",
        "pl_none": "none",
        "pl_show": "Update",
        "pl_map_link": "Station map",
        "pl_computing": "Computing coverage ({stage} {done}/{total})… this page reloads in a "
        "few seconds.",
        "pl_no_network": "No road network is loaded yet, so walking, riding and driving times "
        "cannot be computed. Run `yizhan network demo` (the Wuhan sample) or "
        "`yizhan network import FILE`.",
        "pl_headline": "Demand within {m} min of a station by {mode}: {share} ({stations} open "
        "stations; half of the demand within {median} min)",
        "pl_downloads": "Download",
        "pl_dl_districts_csv": "district table CSV",
        "pl_dl_districts_geojson": "district table GeoJSON",
        "pl_dl_cells_csv": "cells CSV",
        "pl_dl_cells_geojson": "cells GeoJSON",
        "pl_dl_gaps_csv": "gap pieces CSV",
        "pl_dl_gaps_geojson": "gap pieces GeoJSON",
        "pl_dl_map": "offline map HTML",
        "pl_table_title": "By district",
        "pl_col_district": "District",
        "pl_col_area": "Street-cell area km²",
        "pl_col_district_area": "District area km²",
        "pl_col_network_share": "Inside road network",
        "pl_status_partial": "partly inside the network",
        "pl_status_outside": "outside the network",
        "pl_extent_note": "District areas are the outlines' areas on the ellipsoid; coverage "
        'counts only the cells with streets ("street-cell area"). The road network covers '
        "{box} (the convex hull of its nodes, {area} km²), holding {share} of the districts' "
        "area; a district with less than {partial} inside is marked partly inside.",
        "pl_col_demand": "Demand ({u})",
        "pl_col_within": "Demand ≤ {m} min",
        "pl_col_area_within": "Area ≤ {m} min",
        "pl_col_stations": "Open stations",
        "pl_col_per10k": "Stations per 10k {u}",
        "pl_col_dense": "Over-dense cells",
        "pl_row_all": "Whole city",
        "pl_row_outside": "Cells in no district: {cells}, demand {demand} {u}",
        "pl_no_districts": "No district outlines loaded (`yizhan districts demo` or import): "
        "the table has the city total only.",
        "pl_notes": "Notes: a demand share is the demand of the cells within that time of a "
        "station over all demand; an over-dense cell reaches {n} or more stations within {dm} "
        "min (a radius of about 400 m by every mode: 5 min walking, 2 by e-bike, 1 by car); a "
        "station to review is one whose closing alone leaves under {p}% of the demand it "
        "serves beyond {m} min and whose nearest demand would need at most {r} of the median "
        "station's extra time to reach the next station; close pairs are stations within {pm} "
        "min of each other.",
        "pl_tiles": "Base map",
        "pl_band": "{lo}–{hi} min",
        "pl_gap_band": "over {m} min or unreachable",
        "pl_demand": "Demand",
        "pl_share_demand": "Share of demand",
        "pl_area": "Area",
        "pl_cells": "Cells",
        "pl_layer_bands": "Coverage (minutes)",
        "pl_layer_districts": "District outlines",
        "pl_dense_title": "Over-dense area",
        "pl_dense_n": "Stations within {m} min",
        "pl_dense_why": "{n} or more stations within {m} min: new stations are better placed "
        "elsewhere.",
        "pl_layer_dense": "Over-dense cells (≥{n} stations / {m} min): {c}",
        "pl_unreachable": "unreachable",
        "pl_gap_title": "Gap no. {rank}",
        "pl_uncovered": "Uncovered demand",
        "pl_max_minutes": "Longest time",
        "pl_in_districts": "Districts",
        "pl_layer_gaps": "Gaps: {n}, cut by district and one station's reach into {p} pieces",
        "pl_station_id": "ID",
        "pl_covered": "Demand served within {m} min",
        "pl_exclusive": "… served by this station only",
        "pl_loss": "Lost if closed",
        "pl_redundant": "to review",
        "pl_redundant_why": "Closing this station alone leaves under {p}% of the demand it "
        "serves beyond {m} min, and the demand it is nearest to would need on average at most "
        "{r} of the median station's extra time ({med} min) to reach the next station: other "
        "stations nearby cover it.",
        "pl_backup": "Extra time to the next station if closed (median station {med} min)",
        "pl_small_gaps": "{n} smaller gaps (the largest {k} are shown one by one)",
        "pl_small_pieces": "{n} smaller gap pieces (the largest {k} are shown one by one)",
        "pl_piece_title": "Gap {gap} · piece {rank}",
        "pl_in_district": "District",
        "pl_outside_districts": "outside every district",
        "pl_unreachable_cells": "Unreachable cells",
        "pl_site_gain": "One new station adds at most",
        "pl_site_in_piece": "Of this piece's demand it covers",
        "pl_gaps_title": "Gaps: what one new station would solve (first {n} pieces)",
        "pl_gaps_intro": "Gaps (connected cells with no station within {m} min: {g}) are cut "
        "at district lines, then into pieces about the size one new station serves "
        "within {m} min ({mode}; at most {cap} km² unless a single cell): {p} pieces, largest "
        'uncovered demand first. "One new station" is the best single site on the piece\'s '
        "streets (existing stations kept): the demand it brings within {m} min, and the "
        "share of the piece's demand it covers.",
        "pl_gaps_none": "No gaps: all demand is within {m} min.",
        "pl_gaps_unreachable": "{u} gap cells (in {k} pieces) are unreachable: no road usable "
        '({mode}) within {off} m, so no station, new or existing, reaches them; "longest time" '
        "counts only the other cells, and the unreachable ones are counted apart.",
        "pl_gcol_rank": "Piece",
        "pl_gcol_gap": "Gap",
        "pl_gcol_district": "District",
        "pl_gcol_uncovered": "Uncovered demand ({u})",
        "pl_gcol_share": "Share of demand",
        "pl_gcol_area": "Area km²",
        "pl_gcol_max": "Longest time (min)",
        "pl_gcol_unreach": "Unreachable cells",
        "pl_gcol_gain": "One new station adds ({u})",
        "pl_gcol_in_piece": "Share of the piece covered",
        "pl_gcol_site": "Site (WGS-84 lon, lat)",
        "pl_site_where": "New site",
        "pl_gaps_no_site": "no usable street in this piece",
        "pl_pair_title": "Close pair",
        "pl_pair_why": "Each station is within {m} min of the other.",
        "pl_layer_pairs": "Close pairs (within {m} min): {n}",
        "pl_layer_stations": "Open stations: {n}",
        "pl_layer_redundant": "Stations to review (loss if closed < {p}%, extra time ≤ {r} of "
        "the median): {n}",
        "pl_site_title": "Suggested site {rank}",
        "pl_gain": "Demand newly within {m} min",
        "pl_gain_alone": "If built alone, it would add",
        "pl_covered_after": "Covered after the first {n}",
        "pl_near_station": "Nearest existing station",
        "pl_site_weak": "Adds under {p}% of the first suggested site's gain or under 0.1% of "
        "all demand: of little use; the budget does more elsewhere (another district or mode).",
        "pl_site_marginal": "The gain counts only what the {n} earlier suggested site(s) do "
        "not already cover.",
        "pl_layer_sites": "Suggested sites: {n}",
        "pl_legend_title": "Minutes to the nearest station by {mode} (target {m})",
        "pl_legend_share": "Demand within {m} min:",
        "pl_sym_station": "open station (a number: stations there)",
        "pl_sym_redundant": "station to review (hidden at first)",
        "pl_sym_pair": "close pair",
        "pl_sym_dense": "over-dense cells (hidden at first)",
        "pl_sym_site": "suggested site (numbered in order; grey: of little use)",
        "pl_legend_unit": "percentages: share of demand; demand unit: {u}",
    },
}

#: The planner's "coverage at night": the time picker and the day vs night comparison.
_DAY_NIGHT: dict[str, dict[str, str]] = {
    "zh": {
        "dn_at": "时间",
        "dn_any_time": "不限时间（所有开放状态的驿站）",
        "dn_at_custom": "或指定时间",
        "dn_at_line": "只计 {when} 开放的驿站（按营业时间；未填营业时间的按开放计；"
        "此时不开放或暂停服务的 {n} 个不计）。",
        "dn_compare": "昼夜对比",
        "dn_title": "昼夜对比：{day} 与 {night}",
        "dn_day": "白天",
        "dn_night": "夜间",
        "dn_show": "对比",
        "dn_open_link": "查看昼夜对比（白天与夜间各算一次）",
        "dn_summary": "{where}：{day} 有 {ds} 个开放驿站，{night} 有 {ns} 个；{m} 分钟内可到达"
        "驿站的需求从 {dshare} 变为 {nshare}，夜间失去覆盖的需求 {lost} {u}（{lshare}）。",
        "dn_col_day_stations": "白天开放驿站",
        "dn_col_night_stations": "夜间开放驿站",
        "dn_col_day_share": "白天 {m} 分钟内需求",
        "dn_col_night_share": "夜间 {m} 分钟内需求",
        "dn_col_change": "变化（百分点）",
        "dn_col_lost": "夜间失去覆盖（{u}）",
        "dn_csv": "昼夜对比 CSV",
        "dn_day_gaps": "白天的缺口（按区拆分，共 {n} 块，前 5）",
        "dn_night_gaps": "夜间的缺口（按区拆分，共 {n} 块，前 5）",
        "dn_gap_row": "第 {rank} 名：未覆盖 {d} {u}，{a} km²，{where}",
        "dn_gap_new": "其中白天有驿站覆盖：{d} {u}",
        "dn_no_gaps": "没有缺口。",
        "dn_pending": "正在计算昼夜对比……",
    },
    "en": {
        "dn_at": "Time",
        "dn_any_time": "any time (every station open by status)",
        "dn_at_custom": "or a date and time",
        "dn_at_line": "Counting only stations open at {when} (by their opening hours; unknown "
        "hours count as open; {n} closed then or suspended are left out).",
        "dn_compare": "Day vs night",
        "dn_title": "Day vs night: {day} and {night}",
        "dn_day": "Day",
        "dn_night": "Night",
        "dn_show": "Compare",
        "dn_open_link": "Show the day vs night comparison (one run each)",
        "dn_summary": "{where}: {ds} stations open at {day}, {ns} at {night}; demand within "
        "{m} min of a station goes from {dshare} to {nshare}, {lost} {u} ({lshare}) lose "
        "coverage at night.",
        "dn_col_day_stations": "Stations open by day",
        "dn_col_night_stations": "Stations open at night",
        "dn_col_day_share": "Day: demand within {m} min",
        "dn_col_night_share": "Night: demand within {m} min",
        "dn_col_change": "Change (pp)",
        "dn_col_lost": "Lost at night ({u})",
        "dn_csv": "Day vs night CSV",
        "dn_day_gaps": "Gap pieces by day ({n} in all, top 5)",
        "dn_night_gaps": "Gap pieces at night ({n} in all, top 5)",
        "dn_gap_row": "#{rank}: {d} {u} uncovered, {a} km², {where}",
        "dn_gap_new": "covered by day: {d} {u}",
        "dn_no_gaps": "No gaps.",
        "dn_pending": "Computing the day vs night comparison…",
    },
}
for _lang, _strings in _DAY_NIGHT.items():
    TEXT[_lang].update(_strings)


def texts(lang: str) -> dict[str, str]:
    """The strings of one language (zh unless English was asked for)."""
    return TEXT["en" if lang == "en" else "zh"]


def distance_label(metres: float, lang: str) -> str:
    """'850 米' / '1.2 公里' (or English)."""
    t = texts(lang)
    if metres < 1000:
        return t["m"].format(d=int(round(metres, -1)))
    return t["km"].format(d=f"{metres / 1000:.1f}")


def term_label(term: Any, lang: str) -> str:
    """The label of a vocabulary term in the page language."""
    return str(term.en if lang == "en" else term.zh)
