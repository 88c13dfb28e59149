"""The synthetic demo CRM and its ground truth."""

from __future__ import annotations

import os
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import files

__all__ = ["make_demo_tables", "write_demo_data"]

_AS_OF = "2026-06-30"
_START = "2025-01-01"
_N_DAYS = int((np.datetime64(_AS_OF) - np.datetime64(_START)).astype(int)) + 1
# An open deal is "stalled" when its last stage entry is more than 120 days before
# the as-of date; stalled and active deals keep a day of margin on either side so
# any reasonable reading of "> 120 days" gives the same set.
_STALL_BEFORE = np.datetime64(_AS_OF) - np.timedelta64(121, "D")
_ACTIVE_FROM = np.datetime64(_AS_OF) - np.timedelta64(119, "D")

# The cycle: days from creation to the close a won deal reaches, lognormal around the segment's median; a lost deal
# dies at a uniform share of its cycle.
_CYCLE_MEDIAN_DAYS = {"SMB": 45.0, "Mid-Market": 60.0, "Enterprise": 85.0}
_CYCLE_SIGMA = 0.55
_MIN_CYCLE_DAYS = 3
_LOST_SHARE_OF_CYCLE = (0.55, 0.95)

_STAGES = ("potential", "intent", "evaluation", "decision", "won", "lost")
_STAGE_EN = ("Potential", "Intent", "Evaluation", "Decision", "Closed Won", "Closed Lost")
_STAGE_ZH = ("潜在客户", "意向客户", "评估客户", "决策客户", "赢单", "输单")
_CHINESE_STAGE_SHARE = 0.15
# Deliberately not the true win rates of open deals in each stage.
_STATED_PROBABILITY = (10, 25, 50, 75, 100, 0)

_TEAMS = ("North", "South", "East", "West", "Key Accounts")
_SOURCES = ("Web", "Referral", "Partner", "Event", "Outbound", "Paid Search")
_SOURCE_P = (0.30, 0.12, 0.12, 0.11, 0.20, 0.15)
_SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
_SEGMENT_P = (0.52, 0.31, 0.17)
_PLACEHOLDERS = ("Select", "N/A", "未知", "-", "")

# The true outcome model.  No owner term: owners differ only through engagement,
# so a logit on these features alone is correctly specified.
_INTERCEPT = -3.0
_COEFFICIENTS = {
    "meetings": 0.27,
    "emails_replied": 0.15,
    "demo": 0.6,
    "trial": 0.4,
    "quote_sent": 0.85,
    "budget_confirmed": 0.7,
    "decision_maker_engaged": 0.5,
    "log_visits": 0.25,
}
_SOURCE_EFFECTS = {"Referral": 0.6, "Partner": 0.35, "Event": 0.15, "Outbound": -0.4, "Paid Search": -0.25}
_SEGMENT_EFFECTS = {"Mid-Market": -0.2, "Enterprise": -0.45}

_P_CONTROL = 0.10
_P_TREATMENT = 0.12
#: Points the demo experiment's call script takes from the chance of a deal that does not respond to it.
_HURT = 0.02

_OUTCOME_VARIANTS = {
    "won": ("won", "WON", "赢单"),
    "lost": ("lost", "LOST", "输单"),
    "open": ("open", "进行中"),
}
_BOOL_LABELS = {("Yes", "No"): 0.90, ("是", "否"): 0.05, ("TRUE", "FALSE"): 0.05}

_FIRST_EN = ("Alice", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Henry", "Iris", "Jack",
             "Kate", "Liam", "Mia", "Noah", "Olivia", "Peter", "Rachel", "Sam", "Tara", "Victor")
_LAST_EN = ("Chen", "Smith", "Garcia", "Nguyen", "Patel", "Johnson", "Kim", "Rossi", "Novak",
            "Silva", "Okafor", "Brown", "Walker", "Tanaka", "Fischer")
_SURNAME_ZH = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
_GIVEN_ZH = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "婷", "强", "军", "杰", "丽")

_COMPANY_EN = (
    "Northwind", "Contoso", "Fabrikam", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne",
    "Tyrell", "Cyberdyne", "Soylent", "Hooli", "Vandelay", "Wonka", "Aperture", "Blue Harbor",
    "Silver Peak", "Red Rock", "Evergreen", "Summit", "Pioneer", "Atlas", "Beacon", "Cascade",
    "Crescent", "Falcon", "Granite", "Horizon", "Ironwood", "Juniper", "Keystone", "Lakeside",
    "Maple", "Meridian", "Nova", "Oakridge", "Orion", "Pinnacle", "Quantum", "Redwood", "Sierra",
    "Sterling", "Titan", "Vertex", "Willow", "Zenith", "Apex", "Bright", "Cedar", "Delta", "Echo",
    "Frontier", "Golden Gate", "Harbor", "Liberty", "Polaris", "Riverstone", "Sunrise", "Bluebird",
)
_INDUSTRY_EN = (
    "Traders", "Systems", "Logistics", "Foods", "Analytics", "Solutions", "Manufacturing", "Health",
    "Energy", "Retail", "Labs", "Networks", "Software", "Capital", "Media", "Pharma", "Motors",
    "Textiles", "Consulting", "Robotics", "Outfitters", "Industries", "Dynamics", "Telecom",
    "Biotech", "Airlines", "Construction", "Insurance", "Hospitality", "Chemicals", "Electronics",
    "Apparel", "Furniture", "Packaging", "Semiconductors", "Education", "Travel", "Agritech",
    "Security", "Marine",
)
# Short legal forms in the pool; the near-duplicate variants use the long or
# alternative forms, which never occur in the pool, so a variant is never
# another real account.
_LEGAL_EN = {
    "Inc.": ("Incorporated", "Inc"),
    "Corp.": ("Corporation", "Corp"),
    "Ltd": ("Limited", "Ltd."),
    "LLC": ("L.L.C.", "Llc"),
    "Co.": ("Company", "Co"),
    "Group": ("Grp", "Group Ltd."),
    "Holdings": ("Holding", "Hldgs"),
}
_CITY_ZH = ("北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "苏州", "天津",
            "重庆", "西安", "厦门", "青岛", "长沙", "宁波", "合肥", "郑州", "大连", "无锡")
_CORE_ZH = ("远航", "华信", "恒通", "鼎盛", "星辰", "博远", "天成", "瑞丰", "嘉禾", "汇智",
            "云帆", "金桥", "中联", "新锐", "长青", "德邦", "宏图", "明德", "正泰", "安捷",
            "海纳", "东方", "九州", "易达", "卓越", "鸿运", "晨光", "万象", "同创", "永盛")
_INDUSTRY_ZH = ("科技", "贸易", "物流", "制造", "医疗", "软件", "电子", "食品", "能源", "咨询",
                "信息技术", "实业", "环保", "教育", "传媒")
_LEGAL_ZH = {"有限公司": "有限责任公司", "股份有限公司": "股份公司"}
_PRODUCTS_EN = ("Analytics Suite", "Data Platform", "CRM Add-on", "Support Renewal", "Cloud Migration",
                "Security Audit", "Training Package", "Expansion", "Pilot", "Integration")
_PRODUCTS_ZH = ("数据平台", "分析套件", "续约", "云迁移", "安全审计", "培训服务", "扩容", "试点项目")

_OPPORTUNITY_COLUMNS = (
    "Opportunity ID", "Opportunity Name", "Account Name", "Owner", "Team", "Lead Source", "Segment",
    "Created Date", "Close Date", "Expected Close Date", "Stage", "Outcome", "Amount",
    "Probability (%)", "Visits", "Minutes On Site", "Downloads", "Emails Replied", "Meetings",
    "Demo", "Trial", "Quote Sent", "Budget Confirmed", "Decision Maker Engaged",
)
_BOOL_COLUMNS = {
    "demo": "Demo",
    "trial": "Trial",
    "quote_sent": "Quote Sent",
    "budget_confirmed": "Budget Confirmed",
    "decision_maker_engaged": "Decision Maker Engaged",
}

# The activity log.  Type codes index _ACTIVITY_TYPES.
_ACTIVITY_COLUMNS = ("Activity ID", "Opportunity ID", "Activity Type", "Occurred At", "Minutes")
_ACTIVITY_TYPES = ("Visit", "Meeting", "Reply", "Email", "Call")
_VISIT, _MEETING, _REPLY, _EMAIL, _CALL = range(len(_ACTIVITY_TYPES))
_ACTIVITY_CUTOFF_RULE = "closed: close date 00:00; open: 2026-07-01 00:00; an event counts iff occurred_at <= cut-off"
_DAY_S = 86_400
_MEETING_MINUTES = (30, 45, 60)
_BAD_TIMES = ("", "not a date", "2026-02-30 10:00:00", "31/13/2026")
_BAD_ACTIVITY_ROWS = {"unknown_opportunity": 40, "unparsable_time": 25, "missing_type": 15}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: np.random.Generator, n: int, share: float, eligible: np.ndarray | None = None) -> np.ndarray:
    """Mask of exactly ``round(share * n)`` rows, drawn without replacement from the eligible ones."""
    pool = np.arange(n) if eligible is None else np.flatnonzero(eligible)
    k = min(int(round(share * n)), pool.size)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(pool, size=k, replace=False)] = True
    return mask


def _day_strings(days: np.ndarray) -> np.ndarray:
    """ISO dates for day offsets from the start date."""
    return np.datetime_as_string(np.datetime64(_START) + days.astype("timedelta64[D]"), unit="D")


def _second_strings(seconds: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` for second offsets from the start date."""
    stamps = np.datetime64(_START, "s") + seconds.astype("timedelta64[s]")
    return np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")


def _seconds_since_start(day: np.datetime64) -> int:
    return int((np.datetime64(day, "s") - np.datetime64(_START, "s")).astype(int))


def _owners(rng: np.random.Generator) -> pd.DataFrame:
    """Forty sales reps, eight per team, with unequal volume and skill."""
    english = [f"{f} {s}" for f, s in product(_FIRST_EN, _LAST_EN)]
    chinese = [s + g for s, g in product(_SURNAME_ZH, _GIVEN_ZH)]
    names = [english[i] for i in rng.choice(len(english), 30, replace=False)]
    names += [chinese[i] for i in rng.choice(len(chinese), 10, replace=False)]
    names = [names[i] for i in rng.permutation(len(names))]
    return pd.DataFrame({
        "owner": names,
        "team": np.repeat(_TEAMS, 8),
        "volume": rng.lognormal(0.0, 0.6, 40),
        "skill": rng.normal(0.0, 0.35, 40),
    })


def _account_pool(rng: np.random.Generator, n_english: int = 2000, n_chinese: int = 1000) -> pd.DataFrame:
    """Unique company names with the parts needed to spell them differently later."""
    en = list(product(_COMPANY_EN, _INDUSTRY_EN))
    en = [en[i] for i in rng.choice(len(en), n_english, replace=False)]
    en_legal = rng.choice(list(_LEGAL_EN), n_english)
    zh = list(product(_CITY_ZH, _CORE_ZH, _INDUSTRY_ZH))
    zh = [zh[i] for i in rng.choice(len(zh), n_chinese, replace=False)]
    zh_legal = rng.choice(list(_LEGAL_ZH), n_chinese, p=[0.8, 0.2])
    pool = pd.DataFrame({
        "head": [a for a, _ in en] + [c for c, _, _ in zh],
        "body": [b for _, b in en] + [k + i for _, k, i in zh],
        "legal": list(en_legal) + list(zh_legal),
        "chinese": [False] * n_english + [True] * n_chinese,
    })
    pool["name"] = np.where(pool["chinese"], pool["head"] + pool["body"] + pool["legal"],
                            pool["head"] + " " + pool["body"] + " " + pool["legal"])
    pool["segment"] = rng.choice(_SEGMENTS, len(pool), p=_SEGMENT_P)
    # A few big accounts bring many deals, most bring one or two.
    pool["weight"] = rng.permutation(1.0 / np.arange(1, len(pool) + 1) ** 0.7)
    return pool.iloc[rng.permutation(len(pool))].reset_index(drop=True)


def _account_variant(head: str, body: str, legal: str, chinese: bool, kind: int) -> str:
    """Another spelling of the same company, as a second CRM entry would have it."""
    if chinese:
        variants = (
            head + body + _LEGAL_ZH[legal],
            head + body,
            f"{body}（{head}）{legal}",
            head + body + legal + " ",
            f"{head} {body}{legal}",
        )
    else:
        name = f"{head} {body} {legal}"
        variants = (
            f"{head} {body} {_LEGAL_EN[legal][0]}",
            name.upper(),
            name.lower(),
            name + "  ",
            f"{head} {body} {_LEGAL_EN[legal][1]}",
        )
    return variants[kind]


def _draw_features(rng: np.random.Generator, skill: np.ndarray, source: np.ndarray,
                   segment: np.ndarray) -> pd.DataFrame:
    """Behaviour features tied together through one latent engagement per deal."""
    n = skill.size
    source_lift = {"Web": 0.0, "Referral": 0.25, "Partner": 0.15, "Event": 0.1, "Outbound": -0.2, "Paid Search": -0.1}
    segment_lift = {"SMB": 0.0, "Mid-Market": 0.1, "Enterprise": 0.25}
    z = (skill + rng.normal(0.0, 0.8, n) + pd.Series(source).map(source_lift).to_numpy()
         + pd.Series(segment).map(segment_lift).to_numpy())
    visits = rng.poisson(np.exp(1.6 + 0.6 * z))
    minutes = np.round(visits * rng.gamma(2.0, 2.2, n), 1)
    downloads = rng.poisson(np.exp(-0.6 + 0.6 * z))
    emails = rng.poisson(np.exp(0.1 + 0.5 * z))
    meetings = np.minimum(rng.poisson(np.exp(-0.3 + 0.6 * z)), 15)
    # Milestones build on each other: a quote mostly follows a demo, etc.
    demo = rng.random(n) < _sigmoid(-1.0 + 0.9 * z + 0.35 * np.minimum(meetings, 4))
    trial = rng.random(n) < _sigmoid(-1.6 + 0.6 * z + 1.1 * demo)
    quote = rng.random(n) < _sigmoid(-2.4 + 0.6 * z + 1.8 * demo + 0.5 * trial)
    budget = rng.random(n) < _sigmoid(-1.7 + 0.5 * z + 1.0 * quote + 0.15 * meetings)
    dme = rng.random(n) < _sigmoid(-1.3 + 0.6 * z + 0.25 * meetings + 0.6 * budget)
    return pd.DataFrame({
        "engagement": z, "visits": visits, "minutes_on_site": minutes, "downloads": downloads,
        "emails_replied": emails, "meetings": meetings, "demo": demo, "trial": trial,
        "quote_sent": quote, "budget_confirmed": budget, "decision_maker_engaged": dme,
    })


def _true_logit(df: pd.DataFrame) -> np.ndarray:
    eta = np.full(len(df), _INTERCEPT)
    for name, beta in _COEFFICIENTS.items():
        x = np.log1p(df["visits"]) if name == "log_visits" else df[name]
        eta = eta + beta * np.asarray(x, dtype=float)
    eta += df["lead_source"].map(_SOURCE_EFFECTS).fillna(0.0).to_numpy()
    eta += df["segment"].map(_SEGMENT_EFFECTS).fillna(0.0).to_numpy()
    return eta


def _feature_stage(df: pd.DataFrame) -> np.ndarray:
    """The furthest open stage a deal's behaviour supports (0 = potential .. 3 = decision)."""
    return np.select(
        [df["quote_sent"] & df["budget_confirmed"], df["demo"] | df["trial"],
         (df["meetings"] >= 1) | (df["emails_replied"] >= 2)],
        [3, 2, 1], default=0,
    )


def _build_truth(rng: np.random.Generator, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clean opportunity table: what really happened, before the CRM mangles it."""
    owners = _owners(rng)
    pool = _account_pool(rng)
    created = np.sort(rng.integers(0, _N_DAYS, rows))
    account = rng.choice(len(pool), rows, p=(pool["weight"] / pool["weight"].sum()).to_numpy())
    segment = pool["segment"].to_numpy()[account]
    # Key Accounts reps mostly carry the Enterprise deals.
    owner = np.empty(rows, dtype=int)
    for seg in _SEGMENTS:
        affinity = {"SMB": 0.2, "Mid-Market": 1.0, "Enterprise": 4.0}[seg]
        w = owners["volume"].to_numpy() * np.where(owners["team"] == "Key Accounts", affinity, 1.0)
        hit = segment == seg
        owner[hit] = rng.choice(40, hit.sum(), p=w / w.sum())
    source = rng.choice(_SOURCES, rows, p=_SOURCE_P)
    df = pd.DataFrame({
        "opportunity_id": [f"OPP-{i:06d}" for i in range(1, rows + 1)],
        "account_index": account,
        "account_name": pool["name"].to_numpy()[account],
        "owner": owners["owner"].to_numpy()[owner],
        "team": owners["team"].to_numpy()[owner],
        "owner_skill": owners["skill"].to_numpy()[owner],
        "lead_source": source,
        "segment": segment,
        "created_day": created,
    })
    df = pd.concat([df, _draw_features(rng, owners["skill"].to_numpy()[owner], source, segment)], axis=1)
    df["p_won"] = _sigmoid(_true_logit(df))
    df["latent_won"] = rng.random(rows) < df["p_won"].to_numpy()

    # Cycle length ignores the outcome, so whether a deal is closed by the as-of
    # date is independent of how it ends; lost deals die part-way through the
    # cycle, which keeps won deals the longer ones.
    median = df["segment"].map(_CYCLE_MEDIAN_DAYS).to_numpy()
    cycle = np.maximum(_MIN_CYCLE_DAYS, np.round(median * np.exp(rng.normal(0.0, _CYCLE_SIGMA, rows)))).astype(int)
    lost_cycle = np.maximum(1, np.round(cycle * rng.uniform(*_LOST_SHARE_OF_CYCLE, rows))).astype(int)
    closed = created + cycle <= _N_DAYS - 1
    won = df["latent_won"].to_numpy()
    df["outcome"] = np.where(~closed, "open", np.where(won, "won", "lost"))
    df["cycle_days"] = np.where(won, cycle, lost_cycle)
    df["close_day"] = np.where(closed, created + df["cycle_days"].to_numpy(), -1)
    df["expected_close_day"] = np.where(closed, -1, created + cycle)

    # The CRM's stage follows the behaviour, but reps update it imperfectly.
    top = _feature_stage(df)
    off = rng.random(rows) < 0.05
    top = np.where(off, np.clip(top + rng.choice([-1, 1], rows), 0, 3), top)
    is_won = df["outcome"].to_numpy() == "won"
    df["stage_rule_noise"] = off & (top != _feature_stage(df)) & ~is_won
    df["top_stage"] = np.where(is_won, 3, top)
    df["stage"] = np.select([is_won, df["outcome"].to_numpy() == "lost"], ["won", "lost"],
                            np.array(_STAGES)[df["top_stage"].to_numpy()])
    df["stated_probability"] = df["stage"].map(dict(zip(_STAGES, _STATED_PROBABILITY)))

    lognormal_median = df["segment"].map({"SMB": 8000.0, "Mid-Market": 30000.0, "Enterprise": 120000.0})
    df["amount"] = np.maximum(500.0, np.round(lognormal_median.to_numpy() * np.exp(rng.normal(0, 0.7, rows)), -1))
    chinese = pool["chinese"].to_numpy()[account]
    product_en = rng.choice(_PRODUCTS_EN, rows)
    product_zh = rng.choice(_PRODUCTS_ZH, rows)
    head = pool["head"].to_numpy()[account]
    body = pool["body"].to_numpy()[account]
    df["opportunity_name"] = np.where(chinese, head + body + " - " + product_zh,
                                      head + " " + body + " - " + product_en)
    df["created_date"] = _day_strings(created)
    df["close_date"] = np.where(closed, _day_strings(np.maximum(df["close_day"].to_numpy(), 0)), "")
    df["expected_close_date"] = np.where(closed, "", _day_strings(np.maximum(df["expected_close_day"].to_numpy(), 0)))
    return df, pool


def true_chance_won_within(truth: pd.DataFrame, as_of: str | pd.Timestamp, horizon_days: int) -> pd.Series:
    """The generator's own chance that a deal open on ``as_of`` is won within ``horizon_days`` after it.

    The forecast's ground truth: from the dynamics the deals were drawn from, given each deal's true win probability
    ``p_won``, its segment and its age on ``as_of`` (and nothing the generator drew for it afterwards). A won deal
    closes when its cycle ends; a lost one at a uniform share of it; a deal whose cycle ends after the demo's as-of
    date is still open. So with ``C`` the cycle and ``a`` the age,
    ``P = p P(a < C <= a + h) / (p P(C > a) + (1 - p) P(open on as_of | lost))``, summed over the cycle's days.

    Parameters
    ----------
    truth : DataFrame
        ``opportunities_truth`` of :func:`make_demo_tables` (or some of its rows): ``opportunity_id``,
        ``created_date``, ``segment``, ``p_won``.
    as_of : date
        A past day, no later than the demo's as-of date minus the horizon (later, the outcomes are not all drawn).
    horizon_days : int
        The horizon.

    Returns
    -------
    Series
        The chance per ``opportunity_id``; NaN for a deal created after ``as_of``.
    """
    from scipy.special import ndtr

    start = pd.Timestamp(_START)
    day = (pd.Timestamp(as_of) - start).days
    created = (pd.to_datetime(truth["created_date"]) - start).dt.days.to_numpy()
    median = truth["segment"].map(_CYCLE_MEDIAN_DAYS).to_numpy(float)
    age = (day - created)[:, None]
    cycle = np.arange(_MIN_CYCLE_DAYS, 40 * int(max(_CYCLE_MEDIAN_DAYS.values())))[None, :]
    # C = max(3, round(median e^Z)), Z ~ N(0, sigma): the first day takes all of the mass below it
    cdf = ndtr(np.log((cycle + 0.5) / median[:, None]) / _CYCLE_SIGMA)
    cdf[:, -1] = 1.0
    mass = np.diff(cdf, axis=1, prepend=0.0)
    won_open = (mass * (cycle > age)).sum(axis=1)
    won_within = (mass * ((cycle > age) & (cycle <= age + horizon_days))).sum(axis=1)
    # a lost deal is open while round(C U) > a (U uniform on the share of its cycle), or if its cycle outlasts the demo
    low, high = _LOST_SHARE_OF_CYCLE
    lost_alive = np.clip((high - (age + 0.5) / cycle) / (high - low), 0.0, 1.0)
    outlasts = created[:, None] + cycle > _N_DAYS - 1
    lost_open = (mass * np.where(outlasts, 1.0, lost_alive)).sum(axis=1)
    p = truth["p_won"].to_numpy(float)
    chance = p * won_within / (p * won_open + (1 - p) * lost_open)
    return pd.Series(np.where(age[:, 0] >= 0, chance, np.nan), index=truth["opportunity_id"].to_numpy(),
                     name="p_won_within")


def _stage_paths(top: np.ndarray, outcome: np.ndarray, skipped: np.ndarray, want_back: np.ndarray,
                 want_repeat: np.ndarray, needs_recent: np.ndarray, u_k: np.ndarray,
                 u_pos: np.ndarray) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Stage codes per deal (0-3 open stages, 4 won, 5 lost) and which deals got a move back or a repeat."""
    n = top.size
    paths: list[list[int]] = []
    deal_back = np.zeros(n, dtype=bool)
    deal_repeat = np.zeros(n, dtype=bool)
    for i in range(n):
        path = [s for s in range(top[i] + 1) if s != skipped[i]]
        if want_back[i]:
            # Step back one stage and return, only where both stages are already on
            # the path, so the move adds exactly one backward step and two re-entries.
            options = [k for k in path if k >= 1 and k - 1 in path]
            if options:
                k = options[int(u_k[i] * len(options))]
                at = path.index(k) + 1
                path[at:at] = [k - 1, k]
                deal_back[i] = True
        if want_repeat[i] or (needs_recent[i] and len(path) == 1):
            at = int(u_pos[i] * len(path))
            path.insert(at + 1, path[at])
            deal_repeat[i] = True
        if outcome[i] != "open":
            path.append(4 if outcome[i] == "won" else 5)
        paths.append(path)
    return paths, deal_back, deal_repeat


def _stage_history(rng: np.random.Generator, truth: pd.DataFrame,
                   close_rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Stage entries per deal, with skips, backward moves, re-entries and stalls.

    Each row also carries the expected close date as the rep had it then (drawn from ``close_rng``, so that adding it
    left every other demo value unchanged): a first guess of 60-110% of the real time to close, moving linearly to the
    real close (closed deals) or the current expected close (open deals), never before the row's own day.
    """
    n = len(truth)
    top = truth["top_stage"].to_numpy()
    outcome = truth["outcome"].to_numpy()
    is_open = outcome == "open"
    created = truth["created_day"].to_numpy()
    stall_day = int((_STALL_BEFORE - np.datetime64(_START)).astype(int))
    active_day = int((_ACTIVE_FROM - np.datetime64(_START)).astype(int))

    stalled = _pick(rng, n, 0.05 * is_open.mean(), is_open & (created <= stall_day - 3))
    # An active open deal created before the activity window needs a recent entry,
    # so a lone "potential" entry gets re-saved (a re-entry) inside the window.
    needs_recent = is_open & ~stalled & (created < active_day)
    u_skip, u_j, u_back, u_k, u_repeat, u_pos = rng.random((6, n))
    do_skip = (top >= 2) & (u_skip < 0.18)
    skipped = np.where(do_skip, 1 + np.floor(u_j * (top - 1)).astype(int), -1)
    want_back = u_back < 0.07
    want_repeat = u_repeat < 0.04

    paths, deal_back, deal_repeat = _stage_paths(top, outcome, skipped, want_back, want_repeat, needs_recent, u_k, u_pos)
    n_back, n_repeat = int(deal_back.sum()), int(deal_repeat.sum())

    lengths = np.fromiter((len(p) for p in paths), dtype=int, count=n)
    codes = np.fromiter((c for p in paths for c in p), dtype=int, count=int(lengths.sum()))
    deal = np.repeat(np.arange(n), lengths)
    pos = np.arange(codes.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)

    # First entry on the created day, last entry at the close (closed deals), in
    # the recent window (active open deals) or before the stall cut-off (stalled).
    day_s = 86_400
    t0 = created * day_s + 8 * 3600 + rng.integers(0, 10 * 3600, n)
    close_t = truth["close_day"].to_numpy() * day_s + 9 * 3600 + rng.integers(0, 9 * 3600, n)
    as_of_end = _N_DAYS * day_s - 1
    lo = np.where(stalled, t0 + lengths, np.maximum(t0 + lengths, active_day * day_s))
    hi = np.where(stalled, stall_day * day_s, as_of_end)
    open_t = lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64)
    t_end = np.where(is_open, open_t, close_t)
    t_end = np.where(lengths == 1, t0, t_end)

    frac = rng.random(codes.size)
    frac[pos == 0] = 0.0
    frac[pos == lengths[deal] - 1] = 1.0
    frac[(lengths[deal] == 1)] = 0.0
    order = np.lexsort((frac, deal))
    frac = frac[order]
    # Adding the row position keeps timestamps strictly increasing within a deal.
    span = (t_end - t0 - (lengths - 1))[deal]
    seconds = t0[deal] + pos + np.floor(frac * span).astype(np.int64)

    chinese = rng.random(codes.size) < _CHINESE_STAGE_SHARE
    labels = np.where(chinese, np.array(_STAGE_ZH)[codes], np.array(_STAGE_EN)[codes])

    final = np.where(is_open, truth["expected_close_day"].to_numpy(), truth["close_day"].to_numpy())
    guess = created + np.round((final - created) * close_rng.uniform(0.6, 1.1, n)).astype(int)
    # a deal with one row has only its current expected close
    progress = np.where((t_end > t0)[deal], (seconds - t0[deal]) / np.maximum(t_end - t0, 1)[deal], 1.0)
    expected = guess[deal] + np.round((final - guess)[deal] * progress).astype(int)
    expected = np.maximum(expected, seconds // day_s)
    history = pd.DataFrame({
        "Opportunity ID": truth["opportunity_id"].to_numpy()[deal],
        "Stage": labels,
        "Entered At": _second_strings(seconds),
        "Expected Close Date": _day_strings(expected),
    })
    stalled_ids = truth["opportunity_id"].to_numpy()[stalled].tolist()
    facts = {
        "skips": int(do_skip.sum()),
        "backward_moves": n_back,
        "re_entries": 2 * n_back,
        "repeated_rows": n_repeat,
        "deals_with_skip": int(do_skip.sum()),
        "deals_with_backward_move": int(deal_back.sum()),
        "deals_with_repeat_entry": int(deal_repeat.sum()),
        "stalled_open_count": len(stalled_ids),
        "stalled_open_ids": stalled_ids,
        "stalled_rule": "open deal whose last Entered At is more than 120 days before as_of",
        "chinese_stage_label_count": int(chinese.sum()),
        "rows": len(history),
        "definitions": {
            "skip": "consecutive entries between open stages that move forward by more than one stage",
            "backward_move": "consecutive entries between open stages that move to an earlier stage",
            "re_entry": "an entry into a stage the deal has already entered before, after being in another stage",
            "repeated_row": "a row in the stage of the row before it (a re-save, not a move: one stay)",
        },
    }
    return history, facts


#: The planted shift (``plant_shift=True``): a pipeline review in which reps moved deals into intent in one week.
PLANTED_WEEK = ("2026-03-02", "2026-03-08")
_PLANTED_STAGE = 1  # intent
_PLANTED_SHARE = 0.012  # of the rows: deals whose first intent entry is pulled into the week


def _plant_entry_spike(rng: np.random.Generator, history: pd.DataFrame, rows: int) -> tuple[pd.DataFrame, dict]:
    """Pull the first intent entry of some deals from the three weeks after :data:`PLANTED_WEEK` into it, as a batch
    update at a pipeline review does. Only deals whose row before lies before the week are moved (the row after
    comes after the old time, so after the week), so every deal's rows keep their order; nothing else changes."""
    start = pd.Timestamp(PLANTED_WEEK[0])
    end = pd.Timestamp(PLANTED_WEEK[1]) + pd.Timedelta(days=1)
    at = pd.to_datetime(history["Entered At"])
    deal = history["Opportunity ID"]
    is_stage = history["Stage"].isin([_STAGE_EN[_PLANTED_STAGE], _STAGE_ZH[_PLANTED_STAGE]])
    first = is_stage & ~is_stage.groupby(deal).cumsum().gt(1)
    before = at.groupby(deal).shift(1)
    eligible = first & (at >= end) & (at < end + pd.Timedelta(weeks=3)) & (before < start)
    rows_moved = rng.choice(np.flatnonzero(eligible.to_numpy()), min(int(eligible.sum()), round(_PLANTED_SHARE * rows)),
                            replace=False)
    seconds = rng.integers(0, 7 * 86_400, len(rows_moved))
    out = history.copy()
    new_at = (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S").to_numpy()
    out.iloc[rows_moved, out.columns.get_loc("Entered At")] = new_at
    ids = sorted(deal.iloc[rows_moved])
    return out, {"period": f"{PLANTED_WEEK[0]}/{PLANTED_WEEK[1]}", "stage": _STAGES[_PLANTED_STAGE],
                 "metric": "entered", "direction": "above", "deals": len(ids), "opportunity_ids": ids,
                 "what": "first intent entries pulled from the three weeks after into this week (a batch update)"}


def _format_amount_text(amount: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Amounts as people type them: currency signs, thousands separators, 万."""
    a = pd.Series(amount)
    yuan = "¥" + a.map("{:,.0f}".format)
    dollar = "$" + a.map("{:,.2f}".format)
    comma = a.map("{:,.0f}".format)
    wan = (a / 10_000).map(lambda v: f"{v:.4f}".rstrip("0").rstrip(".")) + "万"
    # Below 1,000 a bare "870" would read as a plain number, so it gets a currency sign.
    return np.select([kind == 1, (kind == 2) & (amount >= 1_000), (kind == 3) & (amount >= 10_000)],
                     [dollar, comma, wan], yuan)


def _bool_labels(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    pairs = list(_BOOL_LABELS)
    which = rng.choice(len(pairs), values.size, p=list(_BOOL_LABELS.values()))
    yes = np.array([p[0] for p in pairs])[which]
    no = np.array([p[1] for p in pairs])[which]
    return np.where(values, yes, no)


def _dirty_cells(rng: np.random.Generator, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The true table as the CRM exports it, and a mark per injected kind of dirt."""
    n = len(truth)
    out = pd.DataFrame({
        "Opportunity ID": truth["opportunity_id"],
        "Opportunity Name": truth["opportunity_name"],
        "Account Name": truth["account_name"],
        "Owner": truth["owner"],
        "Team": truth["team"],
        "Lead Source": truth["lead_source"],
        "Segment": truth["segment"],
        "Created Date": truth["created_date"],
        "Close Date": truth["close_date"],
        "Expected Close Date": truth["expected_close_date"],
    })
    marks: dict[str, np.ndarray] = {}

    codes = truth["stage"].map({s: i for i, s in enumerate(_STAGES)}).to_numpy()
    zh = rng.random(n) < _CHINESE_STAGE_SHARE
    out["Stage"] = np.where(zh, np.array(_STAGE_ZH)[codes], np.array(_STAGE_EN)[codes])
    marks["chinese_stage"] = zh

    outcome = truth["outcome"].to_numpy()
    label = pd.Series(outcome).map({"won": "Won", "lost": "Lost", "open": "Open"}).to_numpy()
    odd = rng.random(n) < 0.06
    pick = rng.random(n)
    for canon, variants in _OUTCOME_VARIANTS.items():
        hit = odd & (outcome == canon)
        label = np.where(hit, np.array(variants)[(pick * len(variants)).astype(int)], label)
    out["Outcome"] = label

    amount = truth["amount"].to_numpy()
    missing = rng.random(n) < 0.01
    text = ~missing & (rng.random(n) < 0.08)
    kind = rng.integers(0, 4, n)
    plain = pd.Series(amount).map("{:.1f}".format).to_numpy()
    out["Amount"] = np.where(missing, "", np.where(text, _format_amount_text(amount, kind), plain))
    marks["amount_missing"], marks["amount_text"] = missing, text

    out["Probability (%)"] = truth["stated_probability"].astype(str).to_numpy()
    out["Visits"] = truth["visits"].astype(str).to_numpy()
    out["Minutes On Site"] = truth["minutes_on_site"].map("{:.1f}".format).to_numpy()
    for col, src in (("Downloads", "downloads"), ("Emails Replied", "emails_replied"), ("Meetings", "meetings")):
        out[col] = truth[src].astype(str).to_numpy()
    for src, col in _BOOL_COLUMNS.items():
        labels = _bool_labels(rng, truth[src].to_numpy())
        out[col] = labels
        marks[f"bool_{col}"] = ~np.isin(labels, ["Yes", "No"])

    # Case variants first, then placeholders overwrite some cells, so a cell is
    # counted in exactly one of the two.
    source = out["Lead Source"].to_numpy().astype(object)
    case = rng.random(n) < 0.02
    style = rng.integers(0, 3, n)
    source_variant = np.select([style == 0, style == 1],
                               [np.char.lower(source.astype(str)), np.char.add(np.char.upper(source.astype(str)), " ")],
                               np.char.add(" ", source.astype(str)))
    out["Lead Source"] = np.where(case, source_variant, source)
    for col, share in (("Lead Source", 0.03), ("Segment", 0.02), ("Account Name", 0.005), ("Owner", 0.005)):
        hit = rng.random(n) < share
        tokens = np.array(_PLACEHOLDERS)[rng.integers(0, len(_PLACEHOLDERS), n)]
        out[col] = np.where(hit, tokens, out[col].to_numpy())
        marks[f"placeholder_{col}"] = np.where(hit, tokens, None)
    marks["source_case"] = case & pd.isna(marks["placeholder_Lead Source"])
    return out, pd.DataFrame(marks)


def _near_duplicates(rng: np.random.Generator, out: pd.DataFrame, marks: pd.DataFrame, truth: pd.DataFrame,
                     pool: pd.DataFrame, near_rows: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Second entries of the same deals under new ids, the account spelled differently."""
    n = len(truth)
    amount = truth["amount"].to_numpy()
    missing = marks["amount_missing"].to_numpy()
    near = out.iloc[near_rows].copy()
    near_marks = marks.iloc[near_rows].copy()
    near_ids = [f"OPP-{n + i + 1:06d}" for i in range(len(near_rows))]
    near["Opportunity ID"] = near_ids
    acc = truth["account_index"].to_numpy()[near_rows]
    variant_kind = rng.integers(0, 5, len(near_rows))
    near["Account Name"] = [
        _account_variant(pool.at[a, "head"], pool.at[a, "body"], pool.at[a, "legal"], bool(pool.at[a, "chinese"]), int(k))
        for a, k in zip(acc, variant_kind)
    ]
    # Half of the near duplicates also differ in one field, as a re-keyed record would.
    changed: dict[str, str] = {}
    tweak = rng.random(len(near_rows)) < 0.5
    factor = 1.0 + rng.choice([-1, 1], len(near_rows)) * rng.uniform(0.01, 0.05, len(near_rows))
    extra_minutes = rng.integers(1, 30, len(near_rows)) / 10
    for j in np.flatnonzero(tweak):
        row = near_rows[j]
        if missing[row]:
            near.iloc[j, near.columns.get_loc("Minutes On Site")] = f"{truth['minutes_on_site'].iat[row] + extra_minutes[j]:.1f}"
            changed[near_ids[j]] = "Minutes On Site"
        else:
            new_amount = np.round(amount[row] * factor[j], -1)
            new_amount = amount[row] + 10.0 if new_amount == amount[row] else new_amount
            near.iloc[j, near.columns.get_loc("Amount")] = f"{new_amount:.1f}"
            near_marks.iloc[j, near_marks.columns.get_loc("amount_text")] = False
            changed[near_ids[j]] = "Amount"
    return near, near_marks, changed


def _dirty_opportunities(rng: np.random.Generator, truth: pd.DataFrame, pool: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The CRM export: the true table with placeholders, mixed labels and duplicates."""
    n = len(truth)
    out, marks = _dirty_cells(rng, truth)
    order = rng.permutation(n)
    n_exact = int(round(0.01 * n))
    exact_rows = np.sort(order[:n_exact])
    # A placeholder has no spelling to vary, so those rows make no near duplicates.
    placeholder_account = marks["placeholder_Account Name"].notna().to_numpy()
    near_candidates = order[n_exact:][~placeholder_account[order[n_exact:]]]
    near_rows = np.sort(near_candidates[: int(round(0.01 * n))])
    near, near_marks, changed = _near_duplicates(rng, out, marks, truth, pool, near_rows)

    file = pd.concat([out, out.iloc[exact_rows], near], ignore_index=True)
    file_marks = pd.concat([marks, marks.iloc[exact_rows], near_marks], ignore_index=True)
    shuffle = rng.permutation(len(file))
    file = file.iloc[shuffle].reset_index(drop=True)[list(_OPPORTUNITY_COLUMNS)]
    file_marks = file_marks.iloc[shuffle].reset_index(drop=True)

    placeholders = {}
    for col in ("Lead Source", "Segment", "Account Name", "Owner"):
        counts = file_marks[f"placeholder_{col}"].dropna().value_counts()
        placeholders[col] = {tok: int(counts.get(tok, 0)) for tok in _PLACEHOLDERS}
    outcome_map = {"Won": "won", "Lost": "lost", "Open": "open"}
    outcome_map |= {v: canon for canon, vs in _OUTCOME_VARIANTS.items() for v in vs}
    dirt = {
        "exact_duplicate_ids": truth["opportunity_id"].to_numpy()[exact_rows].tolist(),
        "near_duplicates": [[truth["opportunity_id"].iat[r], d] for r, d in zip(near_rows, near["Opportunity ID"])],
        "near_duplicate_changed_field": changed,
        "placeholders": placeholders,
        "placeholder_tokens": list(_PLACEHOLDERS),
        "amount_text_count": int(file_marks["amount_text"].sum()),
        "amount_missing_count": int(file_marks["amount_missing"].sum()),
        "outcome_label_map": outcome_map,
        "outcome_label_counts": {k: int(v) for k, v in file["Outcome"].value_counts().sort_index().items()},
        "stage_label_map": {lab: s for labs in (_STAGE_EN, _STAGE_ZH) for lab, s in zip(labs, _STAGES)},
        "chinese_stage_label_count": int(file_marks["chinese_stage"].sum()),
        "source_case_variant_count": int(file_marks["source_case"].sum()),
        "bool_label_map": {lab: flag for pair in _BOOL_LABELS for lab, flag in zip(pair, (True, False))},
        "bool_non_yes_no_count": {col: int(file_marks[f"bool_{col}"].sum()) for col in _BOOL_COLUMNS.values()},
    }
    return file, dirt


def _experiment(rng: np.random.Generator, truth: pd.DataFrame, n_units: int) -> tuple[pd.DataFrame, dict]:
    """An A/B test of a call script on deals, whose revenue is zero-inflated and tracks pre-period spend, and whose
    effect is planted in some deals only (the responders: the script works where there has been no demo yet,
    outside SMB).

    The units are ``n_units`` distinct deals of ``truth``, with their own segment. The script adds the same number
    of points to every responder's chance and takes :data:`_HURT` points from everyone else's, so that each arm's
    conversion rate stays p_arm on average: used on everyone it helps a little, used on the responders a lot."""
    # A minority of habitual buyers both spent before and converts more; their
    # weights average exactly 1, so the control arm's conversion rate stays p_control.
    habit_share, habit_lift = 0.10, 7.0
    other_lift = (1.0 - habit_share * habit_lift) / (1.0 - habit_share)
    deal = np.sort(rng.choice(len(truth), n_units, replace=False))
    segment = truth["segment"].to_numpy()[deal]
    responder = (segment != "SMB") & ~truth["demo"].to_numpy(dtype=bool)[deal]
    effect = (_P_TREATMENT - _P_CONTROL + _HURT * (1 - responder.mean())) / responder.mean()
    change = np.where(responder, effect, -_HURT)
    treated = rng.random(n_units) < 0.5
    habitual = rng.random(n_units) < habit_share
    lift = np.where(habitual, habit_lift, other_lift)
    spend = pd.Series(segment).map({"SMB": 400.0, "Mid-Market": 1500.0, "Enterprise": 6000.0}).to_numpy()
    spend = spend * np.exp(rng.normal(0.0, 0.5, n_units))
    bought_before = rng.random(n_units) < np.where(habitual, 0.95, 0.03)
    pre_value = np.round(bought_before * spend * np.exp(rng.normal(0.0, 0.25, n_units)), 2)
    value_noise = np.exp(rng.normal(0.0, 0.25, n_units))
    converted = rng.random(n_units) < _P_CONTROL * lift + treated * change
    value = np.round(converted * spend * value_noise, 2)
    start = _seconds_since_start(np.datetime64("2026-03-01"))
    end = _seconds_since_start(np.datetime64("2026-05-01")) - 1
    assigned = rng.integers(start, end + 1, n_units)
    units = pd.DataFrame({
        "unit_id": truth["opportunity_id"].to_numpy()[deal],
        "variant": np.where(treated, "script_B", "script_A"),
        "converted": converted.astype(int),
        "value": value,
        "pre_value": pre_value,
        "segment": segment,
        "assigned_seconds": assigned,
    })

    order = rng.permutation(n_units)
    n_dirty = int(round(0.005 * n_units))
    dup_rows = np.sort(order[:n_dirty])
    multi_rows = np.sort(order[n_dirty: 2 * n_dirty])
    # A unit re-assigned later lands in the other arm and behaves like that arm.
    multi = units.iloc[multi_rows].copy()
    other_treated = ~treated[multi_rows]
    multi["variant"] = np.where(other_treated, "script_B", "script_A")
    multi_converted = rng.random(len(multi_rows)) < _P_CONTROL * lift[multi_rows] + other_treated * change[multi_rows]
    multi["converted"] = multi_converted.astype(int)
    multi["value"] = np.round(multi_converted * spend[multi_rows] * np.exp(rng.normal(0.0, 0.25, len(multi_rows))), 2)
    multi["assigned_seconds"] = np.minimum(end, multi["assigned_seconds"] + rng.integers(3600, 5 * 86_400, len(multi_rows)))

    table = pd.concat([units, units.iloc[dup_rows], multi], ignore_index=True)
    table = table.sort_values(["assigned_seconds", "unit_id", "variant"], kind="stable").reset_index(drop=True)
    table["assigned_at"] = _second_strings(table.pop("assigned_seconds").to_numpy())
    table["value"] = table["value"].map("{:.2f}".format)
    table["pre_value"] = table["pre_value"].map("{:.2f}".format)

    facts = {
        "control": "script_A",
        "treatment": "script_B",
        "p_control": _P_CONTROL,
        "p_treatment": _P_TREATMENT,
        "abs_lift": round(_P_TREATMENT - _P_CONTROL, 10),
        "rel_lift": round(_P_TREATMENT / _P_CONTROL - 1.0, 10),
        "n_units": n_units,
        "n_control": int((~treated).sum()),
        "n_treatment": int(treated.sum()),
        "n_rows": len(table),
        "duplicate_unit_ids": units["unit_id"].to_numpy()[dup_rows].tolist(),
        "multi_variant_unit_ids": units["unit_id"].to_numpy()[multi_rows].tolist(),
        "value_pre_value_correlation": round(float(np.corrcoef(value, pre_value)[0, 1]), 4),
        "units": "opportunities",
        "responders": {"rule": "segment != SMB and demo = no", "effect": round(float(effect), 10),
                       "effect_on_others": -_HURT,
                       "share": round(float(responder.mean()), 10),
                       "unit_ids": units["unit_id"].to_numpy()[responder].tolist()},
        "note": "n_control/n_treatment count each unit once, in its first assigned variant",
    }
    return table, facts


def _activity_cutoff_days(truth: pd.DataFrame) -> np.ndarray:
    """Each deal's cut-off as a day offset: the close day, or the day after the as-of date for open deals.

    The cut-off moment is that day at 00:00:00, so the last day a counted event can fall on is the day before.
    """
    return np.where(truth["outcome"].to_numpy() == "open", _N_DAYS, truth["close_day"].to_numpy()).astype(np.int64)


def _event_seconds(rng: np.random.Generator, deal: np.ndarray, created: np.ndarray, span: np.ndarray,
                   power: np.ndarray) -> np.ndarray:
    """Second offsets of events on days ``created .. created + span - 1`` of their deal, any time of day.

    ``power`` (one per event) < 1 pushes events towards the end of the deal's life (``u ** power`` leans to 1), so a
    recent window holds more than its share of them and windowed counts differ from totals.
    """
    u = rng.random(deal.size) ** power
    # float rounding could give offset == span for u just below 1; the cap keeps events before the cut-off
    offset = np.minimum(np.floor(span[deal] * u).astype(np.int64), span[deal] - 1)
    return (created[deal] + offset) * _DAY_S + rng.integers(0, _DAY_S, deal.size)


def _split_minutes(rng: np.random.Generator, deal: np.ndarray, total_tenths: np.ndarray) -> np.ndarray:
    """Split each deal's minutes on site (in tenths of a minute) over its visits, exactly.

    ``deal`` must be grouped (each deal's visits consecutive).  Every visit but the last gets the floor of its
    random share; the last takes the remainder, which is never negative, so the visits sum to the total exactly.
    """
    weight = rng.gamma(2.0, 1.0, deal.size)
    share = total_tenths[deal] * weight / np.bincount(deal, weight, minlength=total_tenths.size)[deal]
    tenths = np.floor(share).astype(np.int64)
    last = np.r_[deal[1:] != deal[:-1], True] if deal.size else np.zeros(0, dtype=bool)
    others = np.bincount(deal[~last], tenths[~last], minlength=total_tenths.size)
    tenths[last] = total_tenths[deal[last]] - np.round(others[deal[last]]).astype(np.int64)
    return tenths


def _call_and_meeting_tenths(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Minutes (in tenths) of meetings (30, 45 or 60) and calls (5-40); -1 (empty) for every other type."""
    meeting = 10 * rng.choice(_MEETING_MINUTES, kind.size)
    call = 10 * rng.integers(5, 41, kind.size)
    return np.select([kind == _MEETING, kind == _CALL], [meeting, call], -1)


def _counted_events(rng: np.random.Generator, truth: pd.DataFrame,
                    cutoff_day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events strictly before each deal's cut-off: visits, meetings and replies matching the truth columns, plus
    Poisson emails and calls.

    Returns
    -------
    deal, kind, seconds, tenths : numpy.ndarray
        Deal row, type code, second offset from the start date and minutes in tenths (-1: empty) per event.
    """
    n = len(truth)
    created = truth["created_day"].to_numpy().astype(np.int64)
    span = cutoff_day - created  # >= 1: every cycle lasts at least a day
    z = truth["engagement"].to_numpy()
    counts = np.stack([
        truth["visits"].to_numpy(), truth["meetings"].to_numpy(), truth["emails_replied"].to_numpy(),
        rng.poisson(3.0 * np.exp(0.15 * z)), rng.poisson(1.5 * np.exp(0.15 * z)),
    ]).astype(np.int64)
    # Type-major, then deal: each type's events form one block with every deal's events consecutive.
    kind = np.repeat(np.arange(len(_ACTIVITY_TYPES)), counts.sum(axis=1))
    deal = np.concatenate([np.repeat(np.arange(n), c) for c in counts])
    power = np.where((kind == _VISIT) | (kind == _REPLY), 0.6, 1.0)
    seconds = _event_seconds(rng, deal, created, span, power)
    tenths = _call_and_meeting_tenths(rng, kind)
    visit = kind == _VISIT
    total = np.round(truth["minutes_on_site"].to_numpy() * 10).astype(np.int64)
    tenths[visit] = _split_minutes(rng, deal[visit], total)
    return deal, kind, seconds, tenths


def _post_outcome_events(rng: np.random.Generator, truth: pd.DataFrame,
                         cutoff_day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events after the close that must not count: onboarding meetings and calls for about 40% of won deals,
    one follow-up email for about 10% of lost deals.

    Every event is at least one second after its deal's cut-off and no later than the as-of date; about a
    third of the onboarding events fall on the close day itself, to catch a date-only comparison.
    """
    outcome = truth["outcome"].to_numpy()
    n = outcome.size
    won = np.flatnonzero(_pick(rng, n, 0.40 * (outcome == "won").mean(), outcome == "won"))
    lost = np.flatnonzero(_pick(rng, n, 0.10 * (outcome == "lost").mean(), outcome == "lost"))
    onboarding = np.repeat(won, rng.integers(1, 4, won.size))
    deal = np.concatenate([onboarding, lost])
    kind = np.concatenate([rng.choice([_MEETING, _CALL], onboarding.size), np.full(lost.size, _EMAIL)])
    close = cutoff_day[deal]
    later = _N_DAYS - 1 - close  # days after the close up to the as-of date
    on_close_day = (later == 0) | ((kind != _EMAIL) & (rng.random(deal.size) < 0.35))
    day = np.where(on_close_day, close, close + 1 + np.floor(rng.random(deal.size) * later).astype(np.int64))
    seconds = day * _DAY_S + rng.integers(1, _DAY_S, deal.size)
    return deal, kind, seconds, _call_and_meeting_tenths(rng, kind)


def _minutes_text(tenths: np.ndarray) -> np.ndarray:
    """One-decimal text from tenths of a minute; empty where ``tenths`` is -1."""
    text = np.char.add(np.char.add((tenths // 10).astype(str), "."), (tenths % 10).astype(str))
    return np.where(tenths < 0, "", text)


def _activities(rng: np.random.Generator, truth: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The activity log: visits, meetings, replies, emails and calls per deal, consistent with the truth table.

    A deal's cut-off is its close date at 00:00:00 (won or lost) or 2026-07-01 00:00:00 (open); an event counts
    for the deal iff ``occurred_at <= cut-off``.  Counted visits, meetings and replies equal the deal's
    ``visits``, ``meetings`` and ``emails_replied`` and the visits' minutes sum to ``minutes_on_site``; all of
    them fall on days from the created day to the day before the cut-off, visits and replies leaning late.
    Onboarding meetings and calls after a win and emails after a loss lie after the cut-off.  Bad rows (an
    unknown opportunity, an unparsable time or an empty type, one problem each) are copies of random events
    with that one cell changed.

    Parameters
    ----------
    rng : numpy.random.Generator
        The log's own generator, so adding the log left every other demo table unchanged.
    truth : pandas.DataFrame
        The clean opportunity table from ``_build_truth``.

    Returns
    -------
    table : pandas.DataFrame
        ``_ACTIVITY_COLUMNS``, all text, sorted by ``Occurred At`` (unparsable times at random positions),
        ``Activity ID`` numbered in file order.
    facts : dict
        Row count, counted events per type, post-outcome counts and the bad rows' ids per problem.
    """
    cutoff_day = _activity_cutoff_days(truth)
    counted = _counted_events(rng, truth, cutoff_day)
    post = _post_outcome_events(rng, truth, cutoff_day)
    deal, kind, seconds, tenths = (np.concatenate(pair) for pair in zip(counted, post))
    n_counted, n_post = counted[0].size, post[0].size

    ids = truth["opportunity_id"].to_numpy().astype(str)
    opp = ids[deal]
    type_text = np.array(_ACTIVITY_TYPES)[kind]
    # Row labels: 0 a good event, else 1 + index of the problem in _BAD_ACTIVITY_ROWS.
    label = np.zeros(deal.size, dtype=np.int64)

    n_bad = dict(_BAD_ACTIVITY_ROWS)
    source = rng.choice(n_counted, sum(n_bad.values()), replace=False)
    src_unknown, src_time, src_type = np.split(source, np.cumsum(list(n_bad.values()))[:-1])
    # "OPP-9" + 5 digits: never a real id while rows < 900,000.
    unknown_ids = np.char.mod("OPP-9%05d", rng.choice(100_000, src_unknown.size, replace=False))
    opp = np.concatenate([opp, unknown_ids, opp[src_type]])
    type_text = np.concatenate([type_text, type_text[src_unknown], np.full(src_type.size, "")])
    seconds = np.concatenate([seconds, seconds[src_unknown], seconds[src_type]])
    tenths = np.concatenate([tenths, tenths[src_unknown], tenths[src_type]])
    label = np.concatenate([label, np.full(src_unknown.size, 1), np.full(src_type.size, 3)])

    order = np.argsort(seconds, kind="stable")
    columns = {"Opportunity ID": opp[order], "Activity Type": type_text[order],
               "Occurred At": _second_strings(seconds[order]), "Minutes": _minutes_text(tenths[order])}
    at = rng.integers(0, order.size + 1, src_time.size)
    bad_time = {"Opportunity ID": ids[deal[src_time]], "Activity Type": np.array(_ACTIVITY_TYPES)[kind[src_time]],
                "Occurred At": rng.choice(_BAD_TIMES, src_time.size), "Minutes": _minutes_text(tenths[src_time])}
    columns = {k: np.insert(v.astype(object), at, bad_time[k].astype(object)) for k, v in columns.items()}
    label = np.insert(label[order], at, 2)

    n_rows = label.size
    activity_ids = np.char.add("ACT-", np.char.zfill(np.arange(1, n_rows + 1).astype(str), 7))
    table = pd.DataFrame({"Activity ID": activity_ids.astype(object), **columns}, columns=list(_ACTIVITY_COLUMNS))
    per_type = np.bincount(kind[:n_counted], minlength=len(_ACTIVITY_TYPES))
    facts = {
        "rows": int(n_rows),
        "per_type_counted": {t: int(c) for t, c in zip(_ACTIVITY_TYPES, per_type)},
        "post_outcome_events": int(n_post),
        "post_outcome_on_close_day": int((post[2] // _DAY_S == cutoff_day[post[0]]).sum()),
        "bad": {name: activity_ids[label == i + 1].tolist() for i, name in enumerate(n_bad)},
        "cutoff_rule": _ACTIVITY_CUTOFF_RULE,
    }
    return table, facts


def _owner_facts(truth: pd.DataFrame) -> dict:
    counts = truth.groupby("owner").agg(team=("team", "first"), deals=("team", "size"), skill=("owner_skill", "first"))
    return {str(o): {"team": str(r["team"]), "deals": int(r["deals"]), "skill": round(float(r["skill"]), 4)}
            for o, r in counts.iterrows()}


def make_demo_tables(*, rows: int = 20_000, seed: int = 7,
                     plant_shift: bool = False) -> tuple[dict[str, pd.DataFrame], dict]:
    """Build the synthetic demo CRM in memory.

    Parameters
    ----------
    rows : int, default 20000
        Number of distinct true opportunities.  Injected duplicates come on top.
    seed : int, default 7
        Seed for ``numpy.random.default_rng``; the only source of randomness.
    plant_shift : bool, default False
        Plant a shift for monitoring to find: deals pulled into intent in :data:`PLANTED_WEEK`, recorded in the
        truth's ``monitoring.planted``. Every other table and row is as without it.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        ``"opportunities"``, ``"stage_history"``, ``"experiment"`` and
        ``"activities"`` exactly as written to CSV (all cells text), plus ``"opportunities_truth"``: the clean
        table (snake_case columns, canonical labels, numeric amounts, booleans,
        the true win probability ``p_won`` and the drawn ``latent_won`` also for
        open deals).
    truth : dict
        The JSON-native ground truth (see ``write_demo_data``).

    Raises
    ------
    ValueError
        If ``rows`` is smaller than 100.
    """
    if int(rows) < 100:
        raise ValueError(f"rows must be at least 100, got {rows}")
    rows = int(rows)
    rng = np.random.default_rng(seed)
    truth_table, pool = _build_truth(rng, rows)
    history, history_facts = _stage_history(rng, truth_table, np.random.default_rng([seed, 1]))
    if plant_shift:
        history, spike = _plant_entry_spike(np.random.default_rng([seed, 3]), history, rows)
    opportunities, dirt = _dirty_opportunities(rng, truth_table, pool)
    experiment, experiment_facts = _experiment(rng, truth_table, rows // 2)
    # Its own generator: drawing from ``rng`` would have changed every table built after it.
    activities, activity_facts = _activities(np.random.default_rng([seed, 2]), truth_table)

    outcome_counts = truth_table["outcome"].value_counts()
    closed = truth_table[truth_table["outcome"] != "open"]
    open_deals = truth_table[truth_table["outcome"] == "open"]
    calibration = {
        s: {"stated_probability": _STATED_PROBABILITY[i],
            "open_deals": int((open_deals["stage"] == s).sum()),
            "mean_true_p_won": round(float(open_deals.loc[open_deals["stage"] == s, "p_won"].mean()), 4)
            if (open_deals["stage"] == s).any() else None}
        for i, s in enumerate(_STAGES[:4])
    }
    truth = {
        "seed": int(seed),
        "rows": rows,
        "as_of": _AS_OF,
        "created_range": [_START, _AS_OF],
        "logistic": {
            "intercept": _INTERCEPT,
            "coefficients": dict(_COEFFICIENTS)
            | {f"source[T.{k}]": v for k, v in _SOURCE_EFFECTS.items()}
            | {f"segment[T.{k}]": v for k, v in _SEGMENT_EFFECTS.items()},
            "reference_levels": {"source": "Web", "segment": "SMB"},
            "log_visits": "log1p(visits)",
            "formula": "won ~ meetings + emails_replied + demo + trial + quote_sent + budget_confirmed"
                       " + decision_maker_engaged + log_visits + source + segment",
        },
        "outcome_counts": {k: int(outcome_counts.get(k, 0)) for k in ("won", "lost", "open")},
        "closed_win_rate": round(float((closed["outcome"] == "won").mean()), 4),
        "stage_calibration": calibration,
        "stage_rule_noise_count": int(truth_table["stage_rule_noise"].sum()),
        "teams": list(_TEAMS),
        "sources": list(_SOURCES),
        "segments": list(_SEGMENTS),
        "owners": _owner_facts(truth_table),
        "experiment": experiment_facts,
        "dirt": dirt,
        "stage_history": history_facts,
        "activities": activity_facts,
        **({"monitoring": {"planted": [spike]}} if plant_shift else {}),
        "files": {
            "opportunities.csv": len(opportunities),
            "stage_history.csv": len(history),
            "experiment.csv": len(experiment),
            "activities.csv": len(activities),
        },
    }
    keep = ["opportunity_id", "opportunity_name", "account_name", "owner", "team", "lead_source", "segment",
            "created_date", "close_date", "expected_close_date", "stage", "outcome", "amount",
            "stated_probability", "visits", "minutes_on_site", "downloads", "emails_replied", "meetings",
            "demo", "trial", "quote_sent", "budget_confirmed", "decision_maker_engaged",
            "engagement", "p_won", "latent_won", "cycle_days"]
    tables = {
        "opportunities": opportunities,
        "stage_history": history,
        "experiment": experiment,
        "activities": activities,
        "opportunities_truth": truth_table[keep].copy(),
    }
    return tables, truth


def write_demo_data(out_dir: str | os.PathLike[str], *, rows: int = 20_000, seed: int = 7,
                    plant_shift: bool = False) -> dict[str, Any]:
    """Write the synthetic demo CRM and its ground truth into ``out_dir``.

    Files: ``opportunities.csv`` (the dirty CRM export), ``stage_history.csv``,
    ``experiment.csv``, ``activities.csv`` (the event log: visits, meetings,
    replies, emails and calls, consistent with the opportunities up to each
    deal's cut-off) and ``ground_truth.json``.  Every file is written to a
    temporary name beside it and renamed into place; the same ``seed`` gives
    byte-identical files.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write into; created if missing.
    rows : int, default 20000
        Number of distinct true opportunities.
    seed : int, default 7
        Seed for ``numpy.random.default_rng``.
    plant_shift : bool, default False
        Plant a shift for monitoring to find (see :func:`make_demo_tables`).

    Returns
    -------
    dict
        The ground truth, as written to ``ground_truth.json``: the logistic
        model (intercept, coefficients, reference levels), outcome counts, the
        experiment's true rates and dirty unit ids, every injected kind of dirt
        with its count or ids and the label maps to canonical values, the stage
        history's skips, backward moves, re-entries and stalled open deals, the
        activity log's counted events per type, post-outcome events, bad-row
        ids and cut-off rule, and the row count of each CSV.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables, truth = make_demo_tables(rows=rows, seed=seed, plant_shift=plant_shift)
    for name in ("opportunities", "stage_history", "experiment", "activities"):
        files.write_csv(out / f"{name}.csv", tables[name])
    files.write_json(out / "ground_truth.json", truth)
    return truth
