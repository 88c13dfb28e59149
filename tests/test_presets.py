"""CRM presets: header matching, status/date derivation on hand-made frames, and the real exports in ../shared/data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from funnel_lab.data.presets import NONE, PRESETS, Preset, get_preset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """``../shared/data`` beside the project; missing is a failure, never a skip."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the preset tests read the real CRM exports there "
                    "(see /work/shared/data/README.md)")
    return SHARED_DATA


def frame(**cols) -> pd.DataFrame:
    """A text frame as ingest reads it (every cell a string)."""
    return pd.DataFrame({k: pd.array(v, dtype="str") for k, v in cols.items()})


def apply(preset: str, raw: pd.DataFrame) -> pd.DataFrame:
    p = get_preset(preset)
    return p.derive(raw.rename(columns=p.match([str(c) for c in raw.columns])))


def statuses(df: pd.DataFrame) -> list:
    return [None if pd.isna(v) else v for v in df["status"]]


def cells(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


# --- registry ------------------------------------------------------------------------------------------------------


def test_registry_names_and_tables():
    assert set(PRESETS) == {"salesforce", "salesforce_history", "hubspot", "hubspot_history", "zoho", "pipedrive",
                            "jiandaoyun", "maven", "salesforce_activity", "web_analytics"}
    assert PRESETS["salesforce_history"].table == PRESETS["hubspot_history"].table == "stage_history"
    assert PRESETS["salesforce_activity"].table == PRESETS["web_analytics"].table == "activities"
    others = set(PRESETS) - {"salesforce_history", "hubspot_history", "salesforce_activity", "web_analytics"}
    assert {PRESETS[n].table for n in others} == {"opportunities"}
    assert get_preset("Salesforce ") is PRESETS["salesforce"]


def test_none_preset_maps_nothing():
    p = get_preset("none")
    assert p is NONE and p.columns == {} and p.match(["Id", "StageName"]) == {}
    raw = frame(Id=["1"], Outcome=["won"])
    out = p.derive(raw)
    assert out.equals(raw) and out is not raw


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown preset .salesforc.; valid presets") as e:
        get_preset("salesforc")
    for name in ("salesforce", "salesforce_history", "hubspot", "zoho", "jiandaoyun", "maven", "none"):
        assert name in str(e.value)


# --- match() -------------------------------------------------------------------------------------------------------


def test_match_bom_on_first_header():
    m = get_preset("salesforce").match(["\ufeffId", "Name", "StageName", "CloseDate"])
    assert m == {"\ufeffId": "opportunity_id", "StageName": "crm_stage", "CloseDate": "_close_date"}


def test_match_lower_case_api_names():
    cols = ["id", "accountid", "name", "stagename", "amount", "probability", "closedate", "type", "leadsource",
            "isclosed", "iswon", "ownerid", "createddate"]
    assert get_preset("salesforce").match(cols) == {
        "id": "opportunity_id", "accountid": "account", "ownerid": "owner", "leadsource": "source",
        "type": "segment", "stagename": "crm_stage", "probability": "crm_probability", "amount": "amount",
        "createddate": "created_at", "closedate": "_close_date", "isclosed": "_is_closed", "iswon": "_is_won",
    }


def test_match_spaced_and_snake_names():
    m = get_preset("salesforce").match(["Stage Name", "close_date", "Created Date", "Lead Source", "is_won"])
    assert m == {"Stage Name": "crm_stage", "close_date": "_close_date", "Created Date": "created_at",
                 "Lead Source": "source", "is_won": "_is_won"}


def test_match_prefers_a_name_column_over_an_id():
    cols = ["AccountId", "OwnerId", "Account.Name", "Owner Name"]
    assert get_preset("salesforce").match(cols) == {"Account.Name": "account", "Owner Name": "owner"}
    assert get_preset("salesforce").match(["AccountId", "AccountName"]) == {"AccountName": "account"}
    assert get_preset("salesforce").match(["AccountId"]) == {"AccountId": "account"}


def test_match_each_name_taken_once_and_each_column_once():
    # two headers normalising alike: the leftmost one is taken, the other stays a feature
    assert get_preset("salesforce").match(["CloseDate", "close_date"]) == {"CloseDate": "_close_date"}
    p = Preset("t", "opportunities", {"a": ("X",), "b": ("X", "Y")})
    assert p.match(["X", "Y"]) == {"X": "a", "Y": "b"}
    assert p.match(["X"]) == {"X": "a"}


def test_match_history():
    cols = ["Id", "OpportunityId", "CreatedDate", "StageName", "Amount", "CloseDate", "Probability"]
    assert get_preset("salesforce_history").match(cols) == {
        "OpportunityId": "opportunity_id", "StageName": "stage", "CreatedDate": "entered_at",
        "CloseDate": "expected_close_at"}


def test_match_hubspot_display_and_api_names():
    ui = ["Record ID", "Deal Name", "Deal Stage", "Amount", "Create Date", "Close Date", "Deal owner", "Deal Type",
          "Original Source Type", "Associated Company", "Deal probability", "Is Closed Won", "Is closed", "Pipeline"]
    assert get_preset("hubspot").match(ui) == {
        "Record ID": "opportunity_id", "Deal Stage": "crm_stage", "Amount": "_deal_amount", "Create Date": "created_at",
        "Close Date": "_close_date", "Deal owner": "owner", "Deal Type": "segment", "Original Source Type": "source",
        "Associated Company": "account", "Deal probability": "crm_probability", "Is Closed Won": "_is_won",
        "Is closed": "_is_closed",
    }
    api = ["hs_object_id", "dealname", "dealstage", "amount", "createdate", "closedate", "hubspot_owner_id",
           "dealtype", "hs_analytics_source", "hs_deal_stage_probability", "hs_is_closed_won", "hs_is_closed"]
    assert get_preset("hubspot").match(api) == {
        "hs_object_id": "opportunity_id", "dealstage": "crm_stage", "amount": "_deal_amount", "createdate": "created_at",
        "closedate": "_close_date", "hubspot_owner_id": "owner", "dealtype": "segment",
        "hs_analytics_source": "source", "hs_deal_stage_probability": "crm_probability",
        "hs_is_closed_won": "_is_won", "hs_is_closed": "_is_closed",
    }


def test_match_zoho_and_jiandaoyun_and_maven():
    zoho = ["Record Id", "Deal Name", "Account Name", "Stage", "Amount", "Closing Date", "Created Time",
            "Deal Owner", "Lead Source", "Type", "Probability (%)"]
    assert get_preset("zoho").match(zoho) == {
        "Record Id": "opportunity_id", "Account Name": "account", "Stage": "crm_stage", "Amount": "amount",
        "Closing Date": "_close_date", "Created Time": "created_at", "Deal Owner": "owner",
        "Lead Source": "source", "Type": "segment", "Probability (%)": "crm_probability",
    }
    jdy = ["商机名称", "数据ID", "客户名称", "商机阶段", "成交金额", "提交时间", "预计成交日期", "销售负责人",
           "客户来源", "客户分类", "赢单率", "赢单"]
    assert get_preset("jiandaoyun").match(jdy) == {
        "数据ID": "opportunity_id", "客户名称": "account", "商机阶段": "crm_stage", "成交金额": "amount",
        "提交时间": "created_at", "预计成交日期": "_expected_close", "销售负责人": "owner", "客户来源": "source",
        "客户分类": "segment", "赢单率": "crm_probability", "赢单": "_is_won",
    }
    maven = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value".split(",")
    assert get_preset("maven").match(maven) == {
        "opportunity_id": "opportunity_id", "sales_agent": "owner", "account": "account",
        "deal_stage": "crm_stage", "engage_date": "created_at", "close_date": "_close_date", "close_value": "amount",
    }


def test_salesforce_placeholders_and_hubspot_stage_values():
    assert "000000000000000AAA" in get_preset("salesforce").placeholders
    assert get_preset("hubspot").values["crm_stage"]["closedwon"] == "Closed Won"


# --- derive(): Salesforce ------------------------------------------------------------------------------------------

BOOLEAN_SPELLINGS = [("1", "0"), ("1", ""), ("TRUE", "FALSE"), ("true", "false")]


@pytest.mark.parametrize(("yes", "no"), BOOLEAN_SPELLINGS)
def test_salesforce_status_from_isclosed_iswon(yes, no):
    raw = frame(
        Id=["a", "b", "c", "d"],
        StageName=["Closed Won", "Closed Lost", "Negotiation/Review", "Stalled"],
        IsClosed=[yes, yes, no, yes],
        IsWon=[yes, no, no, no],
        CloseDate=["2024-01-05", "2024-02-06", "2024-09-30", "2024-03-07"],
    )
    out = apply("salesforce", raw)
    # the flags decide, even where the stage name says nothing about the outcome ("Stalled", closed and not won)
    assert statuses(out) == ["won", "lost", "open", "lost"]
    assert cells(out["closed_at"]) == ["2024-01-05", "2024-02-06", None, "2024-03-07"]
    assert cells(out["expected_close_at"]) == [None, None, "2024-09-30", None]
    assert "_close_date" not in out.columns
    assert cells(out["_is_won"]) == [yes, no, no, no]  # helpers stay, as text
    assert cells(out["_is_closed"]) == [yes, yes, no, yes]


def test_salesforce_status_from_stage_name_variants():
    stages = ["Closed Won", "Closed/Won", "closed-won", "CLOSED WON", "ClosedWon", "Closed_Lost", "Closed - Lost",
              "closed lost", "Closed (Lost)", "Won", "Prospecting", "Id. Decision Makers", "Won't close", ""]
    expected = ["won", "won", "won", "won", "won", "lost", "lost", "lost", "lost", "won", "open", "open", "open",
                None]
    out = apply("salesforce", frame(StageName=stages))
    assert statuses(out) == expected


def test_salesforce_iswon_alone_uses_stage_for_closedness():
    raw = frame(stagename=["Closed Won", "Closed Lost", "Closed", "Negotiation", "Closed - Duplicate", ""],
                iswon=["1", "", "0", "0", "false", "0"])
    assert statuses(apply("salesforce", raw)) == ["won", "lost", "lost", "open", "lost", None]
    # without a stage, "not won" cannot tell open from lost
    assert statuses(apply("salesforce", frame(IsWon=["1", "0"]))) == ["won", None]


def test_salesforce_isclosed_alone_uses_stage_for_outcome():
    raw = frame(StageName=["Closed Won", "Closed Lost", "Prospecting"], IsClosed=["true", "true", "false"])
    assert statuses(apply("salesforce", raw)) == ["won", "lost", "open"]


def test_salesforce_unreadable_flag_falls_back_to_stage():
    raw = frame(StageName=["Closed Won", "Qualification"], IsClosed=["?", "?"], IsWon=["?", "?"])
    assert statuses(apply("salesforce", raw)) == ["won", "open"]


def test_salesforce_without_id_or_outcome_columns():
    raw = frame(Name=["x", "y"], Amount=["10", "20"])
    out = apply("salesforce", raw)
    assert "opportunity_id" not in out.columns and "status" not in out.columns
    assert list(out.columns) == ["Name", "amount"]


def test_derive_keeps_rows_index_and_input():
    raw = frame(IsClosed=["1", "0", "1"], IsWon=["0", "0", "1"], CloseDate=["2024-01-01", "", "2024-03-01"])
    raw.index = [10, 5, 7]
    before = raw.copy()
    out = apply("salesforce", raw)
    assert list(out.index) == [10, 5, 7] and statuses(out) == ["lost", "open", "won"]
    pd.testing.assert_frame_equal(raw, before)


def test_derive_never_overwrites_a_mapped_status_or_date():
    df = frame(status=["won", "open"], _close_date=["2024-01-01", "2024-06-01"], crm_stage=["Closed Lost", "x"],
               closed_at=["2023-12-31", ""])
    out = get_preset("salesforce").derive(df)
    assert statuses(out) == ["won", "open"]
    assert cells(out["closed_at"]) == ["2023-12-31", ""]
    assert cells(out["expected_close_at"]) == [None, "2024-06-01"]
    assert "_close_date" in out.columns  # not every date went somewhere: kept as a feature


def test_close_date_kept_when_status_unknown():
    out = apply("salesforce", frame(StageName=["Closed Won", ""], CloseDate=["2024-01-01", "2024-02-02"]))
    assert statuses(out) == ["won", None]
    assert cells(out["closed_at"]) == ["2024-01-01", None]
    assert cells(out["expected_close_at"]) == [None, None]
    assert cells(out["_close_date"]) == ["2024-01-01", "2024-02-02"]


# --- derive(): HubSpot, Zoho, Maven, 简道云 -------------------------------------------------------------------------


def test_hubspot_flags_stage_fallback_and_probability():
    raw = frame(**{
        "Record ID": ["1", "2", "3", "4"],
        "Deal Stage": ["Closed Won", "Closed Lost", "closedwon", "Contract Sent"],
        "Is Closed Won": ["true", "false", "", "false"],
        "Is closed": ["true", "true", "", "false"],
        "Deal probability": ["1", "0", "1.0", "0.9"],
        "Close Date": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-12-31"],
    })
    out = apply("hubspot", raw)
    assert statuses(out) == ["won", "lost", "won", "open"]  # row 3: blank flags -> the stage id decides
    assert cells(out["crm_probability"]) == ["100.0", "0.0", "100.0", "90.0"]
    assert cells(out["closed_at"]) == ["2024-01-02", "2024-01-03", "2024-01-04", None]
    assert cells(out["expected_close_at"]) == [None, None, None, "2024-12-31"]


def test_hubspot_stage_only_and_probability_already_percent():
    raw = frame(dealstage=["closedwon", "closedlost", "appointmentscheduled", "123456789"],
                hs_deal_stage_probability=["100", "0", "20", ""])
    out = apply("hubspot", raw)
    assert statuses(out) == ["won", "lost", "open", "open"]
    assert cells(out["crm_probability"]) == ["100", "0", "20", ""]


def test_zoho_stage_rule():
    stages = ["Closed Won", "Closed Lost", "Closed-Lost to Competition", "Closed Lost to Competition",
              "Negotiation/Review", "Qualification", "Identify Decision Makers"]
    out = apply("zoho", frame(Stage=stages, **{"Closing Date": ["2024-05-01"] * 7}))
    assert statuses(out) == ["won", "lost", "lost", "lost", "open", "open", "open"]
    assert out["closed_at"].notna().sum() == 4 and out["expected_close_at"].notna().sum() == 3


def test_maven_stage_rule():
    raw = frame(opportunity_id=["A", "B", "C", "D"], product=["GTXPro"] * 4,
                deal_stage=["Won", "Lost", "Engaging", "Prospecting"],
                close_date=["2017-03-01", "2017-03-02", "", ""], close_value=["1054", "0", "", ""])
    out = apply("maven", raw)
    assert statuses(out) == ["won", "lost", "open", "open"]
    assert cells(out["closed_at"]) == ["2017-03-01", "2017-03-02", None, None]
    assert "product" in out.columns and "_close_date" not in out.columns


def test_jiandaoyun_stage_only():
    stages = ["赢单", "已成交", "签约", "输单", "丢单", "失败", "已关闭", "关闭", "初步接洽", "待签约", "未成交",
              "预计成交", "Closed Won", ""]
    expected = ["won", "won", "won", "lost", "lost", "lost", "lost", "lost", "open", "open", "open", "open", "won",
                None]
    assert statuses(apply("jiandaoyun", frame(商机阶段=stages))) == expected


def test_jiandaoyun_expected_date_is_no_sign_of_closing():
    raw = frame(赢单=["否", "否"], 商机阶段=["方案报价", "方案报价"], 预计结单日期=["2024-06-30", ""])
    out = apply("jiandaoyun", raw)
    assert statuses(out) == ["open", "open"]
    assert cells(out["expected_close_at"]) == ["2024-06-30", ""]


@pytest.fixture
def jiandaoyun_xlsx(tmp_path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["商机编号", "商机名称", "客户名称", "商机阶段", "预计成交金额", "创建时间", "结单日期",
               "预计结单日期", "负责人", "线索来源", "客户类型", "赢率", "赢单"])
    d = dt.datetime
    ws.append(["SJ-001", "华东区扩容", "上海某科技", "赢单", 120000, d(2024, 1, 3, 9, 30), d(2024, 3, 1), d(2024, 2, 28),
               "张三", "官网", "企业", 1, "是"])
    ws.append(["SJ-002", "年度续约", "杭州某贸易", "输单", 50000, d(2024, 1, 5), d(2024, 2, 1), None,
               "李四", "展会", "企业", 0, "否"])
    ws.append(["SJ-003", "试点项目", "北京某银行", "商务谈判", 80000, d(2024, 1, 8), d(2024, 4, 2), None,
               "王五", "转介绍", "金融", 0.5, "否"])
    ws.append(["SJ-004", "二期", "深圳某制造", "方案报价", 30000, d(2024, 2, 1), None, d(2024, 6, 30),
               "张三", "官网", "制造", 0.3, "否"])
    ws.append(["SJ-005", "新签", "成都某学校", "已成交", 20000, d(2024, 2, 9), d(2024, 3, 15), None,
               "李四", "电话", "教育", 1, None])
    ws.append(["SJ-006", "咨询", "西安某医院", "待签约", 10000, d(2024, 2, 20), None, d(2024, 7, 1),
               "王五", "电话", "医疗", 0.8, None])
    path = tmp_path / "商机.xlsx"
    wb.save(path)
    return path


def test_jiandaoyun_excel_export(jiandaoyun_xlsx):
    raw = pd.read_excel(jiandaoyun_xlsx, dtype=str, keep_default_na=False)
    out = apply("jiandaoyun", raw)
    assert len(out) == 6
    assert cells(out["opportunity_id"]) == ["SJ-001", "SJ-002", "SJ-003", "SJ-004", "SJ-005", "SJ-006"]
    # 是 -> won; 否 + 输单 -> lost; 否 + 结单日期 filled -> lost; 否 otherwise -> open; blank 赢单 -> the stage
    assert statuses(out) == ["won", "lost", "lost", "open", "won", "open"]
    assert cells(out["closed_at"]) == ["2024-03-01 00:00:00", "2024-02-01 00:00:00", "2024-04-02 00:00:00",
                                       None, "2024-03-15 00:00:00", None]
    assert cells(out["expected_close_at"]) == [None, None, None, "2024-06-30 00:00:00", None, "2024-07-01 00:00:00"]
    assert cells(out["crm_probability"]) == ["100.0", "0.0", "50.0", "30.0", "100.0", "80.0"]
    assert cells(out["owner"])[:2] == ["张三", "李四"] and cells(out["account"])[0] == "上海某科技"
    assert cells(out["amount"])[0] == "120000" and cells(out["created_at"])[0] == "2024-01-03 09:30:00"
    assert cells(out["_is_won"]) == ["是", "否", "否", "否", "", ""]
    assert "商机名称" in out.columns
    assert "_close_date" not in out.columns  # every 结单日期 landed in closed_at
    assert cells(out["_expected_close"])[0] == "2024-02-28 00:00:00"  # SJ-001's expected date is kept as a feature


# --- real exports --------------------------------------------------------------------------------------------------


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.shared_data
def test_real_salesforce_opportunity(data_dir):
    out = apply("salesforce", read(data_dir / "salesforce_devorg" / "opportunity.csv"))
    assert len(out) == 31
    counts = out["status"].value_counts()
    assert (counts.get("won", 0), counts.get("lost", 0), counts.get("open", 0)) == (18, 0, 13)
    is_open = out["status"] == "open"
    assert out.loc[is_open, "expected_close_at"].str.strip().ne("").all()
    assert out.loc[is_open, "closed_at"].isna().all()
    assert out.loc[~is_open, "closed_at"].str.strip().ne("").all()
    assert out["opportunity_id"].is_unique and out["opportunity_id"].str.startswith("006").all()
    assert set(out.loc[out["status"] == "won", "crm_stage"]) == {"Closed Won"}


@pytest.mark.shared_data
def test_real_salesforce_history(data_dir):
    raw = read(data_dir / "salesforce_devorg" / "OpportunityHistory.csv")
    out = apply("salesforce_history", raw)
    assert len(out) == 62
    for c in ("opportunity_id", "stage", "entered_at"):
        assert c in out.columns and out[c].str.strip().ne("").all()
    assert {"Amount", "Probability"} <= set(out.columns)  # kept as features
    assert out["expected_close_at"].str.match(r"\d{4}-\d\d-\d\d").all()  # CloseDate as it stood at each row
    opps = read(data_dir / "salesforce_devorg" / "opportunity.csv")
    assert set(out["opportunity_id"]) <= set(opps["Id"])


@pytest.mark.shared_data
def test_real_maven_pipeline(data_dir):
    out = apply("maven", read(data_dir / "maven_crm" / "sales_pipeline.csv"))
    assert len(out) == 8800
    counts = out["status"].value_counts()
    assert (counts["won"], counts["lost"], counts["open"]) == (4238, 2473, 2089)
    filled = out["closed_at"].notna() & out["closed_at"].str.strip().ne("")
    closed = out["status"].isin(["won", "lost"])
    assert filled.sum() == 6711 and (filled == closed).all()
    assert "product" in out.columns


@pytest.mark.shared_data
def test_real_salesforce_variants_rewritten(data_dir):
    """The dev-org export rewritten as other tools write it: BOM, lower-case names, 1/blank, TRUE/FALSE, no flags."""
    raw = read(data_dir / "salesforce_devorg" / "opportunity.csv")
    lower = raw.rename(columns={c: c.lower() for c in raw.columns}).rename(columns={"id": "\ufeffid"})
    one_blank = lower.assign(isclosed=lower["isclosed"].replace("0", ""), iswon=lower["iswon"].replace("0", ""))
    true_false = raw.assign(IsClosed=np.where(raw["IsClosed"] == "1", "TRUE", "FALSE"),
                            IsWon=np.where(raw["IsWon"] == "1", "TRUE", "FALSE"))
    no_flags = raw.drop(columns=["IsClosed", "IsWon", "Id"])
    for variant in (lower, one_blank, true_false, no_flags):
        out = apply("salesforce", variant)
        assert out["status"].value_counts().to_dict() == {"won": 18, "open": 13}
        assert out["expected_close_at"].notna().sum() == 13
    assert "opportunity_id" not in apply("salesforce", no_flags).columns
