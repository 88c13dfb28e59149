"""简道云 (Jiandaoyun): a 商机 (opportunity) form exported to Excel, with Chinese headers.

简道云 has no fixed deal schema: every company builds its own form. This preset reads the field names of its CRM
templates and the common hand-made variants; anything else can be mapped with ``columns:`` in the params file.
Mapping (first candidate present wins):

==================  =========================================================================================
canonical / helper  source columns
==================  =========================================================================================
opportunity_id      商机编号, 数据ID, _id  (a serial-number field first, then the platform's record id)
account             客户名称
crm_stage           商机阶段
amount              预计成交金额, 成交金额, 金额
created_at          创建时间, 提交时间
_close_date         结单日期  (the actual close date)
_expected_close     预计结单日期, 预计成交日期  (an expected date: never taken as a sign the deal closed)
owner               负责人, 销售负责人, 提交人
source              商机来源, 线索来源, 客户来源
segment             客户类型, 客户分类
crm_probability     赢率, 赢单率  (0-1 values, e.g. an Excel percentage cell, become 0-100)
_is_won             赢单  (是/否, true/false, ...; kept as the feature ``is_won``)
==================  =========================================================================================

商机名称 and every other field stay as features, under their Chinese names.

Status (:func:`derive_opportunities`):

* with a 赢单 column: 是/true -> won; 否/false -> lost when 商机阶段 says lost (输单, 丢单, 失败, 已关闭, 关闭)
  or 结单日期 is filled, else open; a blank 赢单 falls back to the stage rule below;
* without it, from 商机阶段: 赢单, 成交, 已成交, 签约 -> won (not when negated or prospective: 未成交, 待签约,
  预计成交); 输单, 丢单, 失败, 已关闭, 关闭 -> lost (checked first); any other stage open; English "Closed Won" /
  "Closed Lost" labels are read as elsewhere. Missing when the stage is blank and 赢单 does not decide.

Dates split as for Salesforce: on won/lost deals 结单日期 (else the expected date) becomes ``closed_at``; on open
deals the expected date (else 结单日期) becomes ``expected_close_at``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..coerce import parse_bools
from ._common import (
    LOST_PATTERN,
    WON_PATTERN,
    Preset,
    add_status,
    col,
    probability_to_percent,
    split_close_date,
    stage_status,
    text,
)

#: Stage words meaning the deal was lost (checked before the won words).
LOST_WORDS = r"输单|丢单|失败|已关闭|关闭"
#: Stage words meaning won, unless the label also says not yet / expected (未成交, 待签约, 预计成交).
WON_WORDS = r"^(?!.*(?:未|待|不|没|预计|拟)).*(?:赢单|已成交|成交|签约)"
LOST = f"(?:{LOST_WORDS})|(?:{LOST_PATTERN})"
WON = f"(?:{WON_WORDS})|(?:{WON_PATTERN})"


def derive_opportunities(df: pd.DataFrame) -> pd.DataFrame:
    """Status from 赢单 and 商机阶段, probability to 0-100, close-date split.

    Parameters
    ----------
    df : DataFrame
        A 简道云 export renamed with :meth:`Preset.match`, text cells.

    Returns
    -------
    DataFrame
        A new frame with ``status``, ``closed_at``, ``expected_close_at`` (see the module docstring); ``_is_won`` kept.
    """
    stage = col(df, "crm_stage")
    by_stage = stage_status(stage, won=WON, lost=LOST) if stage is not None else None
    status = by_stage
    if "_is_won" in df.columns:
        won = parse_bools(df["_is_won"])
        won_t = won.fillna(False).to_numpy(dtype=bool)
        won_f = (~won).fillna(False).to_numpy(dtype=bool)
        fallback = (by_stage.to_numpy(dtype=object) if by_stage is not None
                    else np.full(len(df), None, dtype=object))
        stage_lost = fallback == "lost"
        closed_date = col(df, "_close_date")
        has_close = (text(closed_date).notna().to_numpy() if closed_date is not None
                     else np.zeros(len(df), dtype=bool))
        arr = np.select([won_t, won_f & (stage_lost | has_close), won_f], ["won", "lost", "open"], default=None)
        arr = np.where(won_t | won_f, arr, fallback).astype(object)
        status = pd.Series(np.where(pd.isna(arr), None, arr), index=df.index, dtype="str")
    out = add_status(df, status)
    if "crm_probability" in out.columns:
        out["crm_probability"] = probability_to_percent(out["crm_probability"])
    closed_src = "_close_date" if "_close_date" in out.columns else "_expected_close"
    open_src = "_expected_close" if "_expected_close" in out.columns else "_close_date"
    return split_close_date(out, closed_source=closed_src, open_source=open_src)


PRESET = Preset(
    name="jiandaoyun",
    table="opportunities",
    columns={
        "opportunity_id": ("商机编号", "数据ID", "_id"),
        "account": ("客户名称",),
        "crm_stage": ("商机阶段",),
        "amount": ("预计成交金额", "成交金额", "金额"),
        "created_at": ("创建时间", "提交时间"),
        "_close_date": ("结单日期",),
        "_expected_close": ("预计结单日期", "预计成交日期"),
        "owner": ("负责人", "销售负责人", "提交人"),
        "source": ("商机来源", "线索来源", "客户来源"),
        "segment": ("客户类型", "客户分类"),
        "crm_probability": ("赢率", "赢单率"),
        "_is_won": ("赢单",),
    },
    derive_fn=derive_opportunities,
)
