"""Params YAML -> validated, typed config: deep merge, ``--set`` overrides, did-you-mean errors, resolved paths."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ParamsError, did_you_mean

TABLES = ("opportunities", "stage_history", "activities", "experiment")
DEFAULT_PLACEHOLDERS = ["", "Select", "N/A", "unknown", "未知", "-"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Join(_Strict):
    """A lookup table joined onto an input table (e.g. products onto opportunities), many-to-one."""

    path: Path
    on: str  # column of the input table (canonical or snake_case name)
    key: str | None = None  # column of the lookup (source name); defaults to ``on``
    columns: list[str] | None = None  # lookup columns to add (source names); all by default
    match: Literal["exact", "loose"] = "loose"  # loose ignores case, spaces and punctuation: "GTXPro" = "GTX Pro"
    encoding: str = "auto"
    sep: str = "auto"


def _values_as_text(v: Any) -> Any:
    """``values:`` maps with text keys and values: YAML reads `Yes: won` keys as booleans and `1: won` as ints; the
    CRM export holds text."""
    if isinstance(v, dict):
        return {col: ({_yaml_text(k): _yaml_text(t) for k, t in m.items()} if isinstance(m, dict) else m)
                for col, m in v.items()}
    return v


class TableSource(_Strict):
    """Where one canonical table comes from and how its columns and values map onto the canonical ones."""

    path: Path | None = None
    sql: str | None = None
    database: str | None = None
    sheet: str | int | None = None
    preset: str = "none"  # a name of funnel_lab.data.presets.PRESETS
    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    encoding: str = "auto"
    sep: str = "auto"
    date_format: str = "auto"
    join: list[Join] = Field(default_factory=list)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        from .data.presets import get_preset

        get_preset(v)  # the registry is the one list of names: an unknown one is refused with them all
        return v.strip().lower()

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_text(cls, v: Any) -> Any:
        return _values_as_text(v)

    def model_post_init(self, __context: Any) -> None:
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of `path` (a file) or `sql` (a query, with `database`)")
        if self.sql is not None and not self.database:
            raise ValueError("`sql` needs `database` (a DuckDB/SQLite file or an SQLAlchemy URL)")


class Snapshots(_Strict):
    """Dated exports of one pipeline (a "current view" saved each week), read like ``data.opportunities``; the stage
    history is what changed between them (:mod:`funnel_lab.data.snapshots`)."""

    path: list[str] | str  # a glob, a file, or a list of either; relative to the params file
    date_column: str | None = None  # the snapshot's date; else the date in each file's name (2024-05-06, 20240506)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)  # {stage: {CRM stage: funnel stage}}

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_text(cls, v: Any) -> Any:
        return _values_as_text(v)

    @field_validator("values")
    @classmethod
    def _stage_only(cls, v: dict) -> dict:
        if set(v) - {"stage"}:
            raise ValueError("only `stage` (CRM stage -> funnel stage); the snapshots read with the values of "
                             "data.opportunities")
        return v

    @field_validator("path")
    @classmethod
    def _some_path(cls, v: list[str] | str) -> list[str] | str:
        if not v:
            raise ValueError("name the snapshot files: a glob (`exports/deals-*.csv`) or a list of files")
        return v

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class SnapshotSource(TableSource):
    """``stage_history`` read from ``data.snapshots``: the opportunities' reading, applied to each snapshot file
    (made by :meth:`Data.history_source`, never written in params)."""

    snapshots: list[str]
    snapshot_date: str | None = None

    def model_post_init(self, __context: Any) -> None:
        pass  # the files are the snapshots, not `path` or `sql`


class Data(_Strict):
    opportunities: TableSource | None = None
    stage_history: TableSource | None = None
    snapshots: Snapshots | None = None
    activities: TableSource | None = None
    experiment: TableSource | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.activities is not None and self.opportunities is None:
            raise ValueError("`activities` needs `opportunities`: behaviour features are counted per opportunity")
        if self.snapshots is not None and self.opportunities is None:
            raise ValueError("`snapshots` needs `opportunities`: each snapshot is read as the opportunities are")
        if self.snapshots is not None and self.stage_history is not None:
            raise ValueError("give `stage_history` (an export of the history) or `snapshots` (dated exports the "
                             "history is built from), not both")

    def history_source(self) -> TableSource | None:
        """``stage_history`` as configured, or read from ``snapshots`` with the opportunities' reading."""
        if self.snapshots is None:
            return self.stage_history
        reading = self.opportunities.model_dump(exclude={"path", "sql", "database", "join", "values"})
        return SnapshotSource(**reading, values={**self.opportunities.values,
                                                 "stage": self.snapshots.values.get("stage", {})},
                              snapshots=self.snapshots.patterns, snapshot_date=self.snapshots.date_column)


class FuzzyDedupe(_Strict):
    columns: list[str]
    threshold: float = Field(90, ge=0, le=100)


class Dedupe(_Strict):
    keys: list[str] = Field(default_factory=lambda: ["opportunity_id"])
    fuzzy: FuzzyDedupe | None = None


class Cleaning(_Strict):
    placeholders: list[str] = Field(default_factory=lambda: list(DEFAULT_PLACEHOLDERS))
    dedupe: Dedupe = Field(default_factory=Dedupe)
    drop_columns: list[str] = Field(default_factory=list)


class ScorePoint(_Strict):
    when: str
    points: float


class Score(_Strict):
    points: list[ScorePoint]
    bands: dict[str, float]


class Stages(_Strict):
    model: str = "stages"
    order: list[str] = Field(min_length=1)
    labels: dict[Literal["en", "zh"], dict[str, str]] = Field(default_factory=dict)
    method: Literal["rules", "score"] | None = None
    rules: dict[str, str] = Field(default_factory=dict)
    score: Score | None = None
    compare_with: Path | None = None
    alpha: float = Field(0.05, gt=0, lt=1)  # significance level of the stage checks


class Features(_Strict):
    """Behaviour features from ``data.activities`` and the analysis date."""

    windows: list[Annotated[int, Field(ge=1, le=3650)]] = Field(default_factory=lambda: [30, 90])
    as_of: date | None = None
    #: closed deals' features are counted up to this many days before closed_at (0: up to closed_at)
    days_before_close: int = Field(0, ge=0)

    @field_validator("windows")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) < len(v):
            raise ValueError("each window (days) once")
        return v


class LinearModel(_Strict):
    """A linear model of deal size or cycle length (an extension of the contract)."""

    formula: str
    log: bool = False  # model log(outcome): effects read as percentages


class Regression(_Strict):
    outcome: str = "won"
    formula: str | None = None
    cluster: str | None = None
    linear: LinearModel | None = None


class ABTest(_Strict):
    outcome: Literal["converted", "value"] = "converted"
    control: str | None = None
    alpha: float = Field(0.05, gt=0, lt=1)
    mde: float | None = Field(None, gt=0)
    power: float = Field(0.8, gt=0, lt=1)
    #: sample-ratio-mismatch check: the p-value below which the split is called broken, and the planned split
    srm_threshold: float = Field(0.001, gt=0, lt=1)
    expected_split: dict[str, float] | None = None
    segment: str | None = "segment"  # the column of the segment breakdown (skipped when absent)


class Targeting(_Strict):
    outcome: str = "won"
    features: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    max_depth: int = Field(4, ge=1, le=20)
    top_n: int = Field(200, ge=1)
    #: columns the leakage guard flags but the analyst vouches for (known before the outcome)
    allow: list[str] = Field(default_factory=list)
    #: stage -> the next action suggested for a deal in it, shown beside each target
    next_actions: dict[str, str] = Field(default_factory=dict)
    seed: int = 0


class Forecast(_Strict):
    horizon_days: int = Field(90, ge=1)
    simulations: int = Field(10_000, ge=100)


class Monitoring(_Strict):
    period: Literal["D", "W", "M", "Q"] = "W"
    alert_sigma: float = Field(3.0, gt=0)
    #: days a deal has to reach a later stage to count as converted; None: each stage's 75th percentile
    window_days: int | None = Field(None, ge=1)
    #: folder of the run history (one record per run); None: ``<reports>/<run_name>/history/``
    history: Path | None = None
    #: runs whose deal-by-deal state is kept in the history (the records themselves are all kept)
    history_deal_runs: int = Field(8, ge=2)


class _Channel(_Strict):
    #: seconds one attempt may take
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    #: attempts after the first one fails (1 s, then 2 s, 4 s... apart)
    retries: int = Field(2, ge=0, le=10)


class Webhook(_Channel):
    """A JSON POST of the new breaches (``alerts.webhook``)."""

    #: ``https://...``, or ``${VAR}`` read from the environment when the alert is sent (never stored)
    url: str = Field(min_length=1)


class Email(_Channel):
    """A short text e-mail of the new breaches (``alerts.email``)."""

    #: ``smtp://user:password@host:port`` (STARTTLS when the server offers it), ``smtps://...`` (TLS), or ``${VAR}``
    smtp_url: str = Field(min_length=1)
    to: list[str] = Field(min_length=1)
    sender: str | None = None  # default: funnel-lab@<this host>

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not re.fullmatch(r"[^@\s]+@[^@\s]+", a)]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(map(repr, bad))}")
        return v


class Alerts(_Strict):
    """Where the new breaches of a run are delivered (``alerts:``); no channel: they stay in ``alerts.csv``."""

    webhook: Webhook | None = None
    email: Email | None = None
    #: the report's address in the message (e.g. where the reports are served); default: the index file's path
    report_url: str | None = None

    def channels(self) -> dict[str, Webhook | Email]:
        return {n: c for n, c in (("webhook", self.webhook), ("email", self.email)) if c is not None}


#: Spark masters: local[N], spark://host:port, yarn, k8s://https://host:port (mesos:// as Spark still takes it)
SPARK_MASTER = r"^(local(\[(\d+|\*)(,\d+)?\])?|(spark|k8s|mesos)://\S+|yarn)$"


class EngineSettings(_Strict):
    """Where the heavy steps run (``engine:``): the embedded DuckDB, or Spark."""

    backend: Literal["duckdb", "spark"] = "duckdb"
    #: Spark only: the master URL; none: the notebook's active SparkSession if there is one, else ``local[2]``
    master: str | None = Field(None, pattern=SPARK_MASTER)
    #: Spark only: session settings (``spark.executor.memory: 8g``...), on top of funnel_lab's
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        if self.backend == "duckdb" and (self.master or self.conf):
            raise ValueError("`master` and `conf` are Spark settings: set `backend: spark` with them")


class Params(_Strict):
    """The whole params file, as DESIGN.md describes it."""

    run_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str | None = None
    language: Literal["en", "zh"] = "en"
    data: Data = Field(default_factory=Data)
    cleaning: Cleaning = Field(default_factory=Cleaning)
    stages: Stages | None = None
    features: Features = Field(default_factory=Features)
    regression: Regression = Field(default_factory=Regression)
    ab_test: ABTest = Field(default_factory=ABTest)
    targeting: Targeting = Field(default_factory=Targeting)
    forecast: Forecast = Field(default_factory=Forecast)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    alerts: Alerts = Field(default_factory=Alerts)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    def tables(self) -> dict[str, TableSource]:
        """The configured input tables, by canonical name."""
        sources = {"stage_history": self.data.history_source()}
        return {name: src for name in TABLES if (src := sources.get(name, getattr(self.data, name))) is not None}


# --------------------------------------------------------------------------- loading


class _TextDatesLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates and yes/no/true/false as text: the schema, not YAML, decides their type.

    YAML 1.1 reads ``Yes: won`` in a value map as ``True: won``; the export holds the text ``Yes``.
    """


_TextDatesLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_text(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return str(v)
    return v


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot read params file ({e})") from None
    try:
        doc = yaml.load(text, Loader=_TextDatesLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}:{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ParamsError(f"{path}: expected a mapping of keys at the top level, got {type(doc).__name__}")
    return doc


def _resolve_paths(doc: dict, base: Path) -> dict:
    """Make the file paths inside one params document absolute, against that document's folder."""
    doc = copy.deepcopy(doc)

    def absolute(v: str) -> str:
        p = Path(v).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    def fix(d: dict, key: str, allow_url: bool = False) -> None:
        v = d.get(key)
        if isinstance(v, list):  # data.snapshots.path: a list of files or globs
            d[key] = [absolute(str(x)) for x in v]
        # a URL, or "${VAR}" read from the environment later, is not a path
        elif isinstance(v, str) and v and not (allow_url and ("://" in v or v.startswith("$"))):
            d[key] = absolute(v)

    for src in (doc.get("data") or {}).values() if isinstance(doc.get("data"), dict) else ():
        if isinstance(src, dict):
            fix(src, "path")
            fix(src, "database", allow_url=True)
            for j in src.get("join") or []:
                if isinstance(j, dict):
                    fix(j, "path")
    if isinstance(doc.get("monitoring"), dict):
        fix(doc["monitoring"], "history")
    if isinstance(doc.get("stages"), dict):
        fix(doc["stages"], "compare_with")
    elif isinstance(doc.get("stages"), str):
        fix(doc, "stages")  # a stage model in its own file
    return doc


def deep_merge(base: dict, override: dict) -> dict:
    """Merge ``override`` into a copy of ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _leaf_paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(d, dict) and d:
        return [p for k, v in d.items() for p in _leaf_paths(v, prefix + (str(k),))]
    return [prefix]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``--set dotted.key=value``; the value is read as YAML (``1``, ``true``, ``[a, b]``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ParamsError(f"--set {text!r}: expected dotted.key=value, e.g. --set language=zh")
    try:
        value = yaml.load(raw, Loader=_TextDatesLoader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_params(files: list[str | Path], overrides: list[str] | None = None) -> Params:
    """Read, deep-merge and validate params files, then apply ``--set`` overrides.

    Parameters
    ----------
    files : list of path
        YAML files, merged left to right. Relative paths inside each resolve against its folder.
    overrides : list of str, optional
        ``dotted.key=value`` strings applied after the merge; relative paths resolve against the working directory.

    Returns
    -------
    Params
        The validated config. ``run_name`` defaults to the first file's stem.

    Raises
    ------
    ParamsError
        Naming the file (or ``--set``), the dotted key and what was expected, with a did-you-mean for unknown keys.
    """
    if not files:
        raise ParamsError("no params file given: funnel-lab run PARAMS.yaml")
    merged: dict = {}
    origin: dict[tuple, str] = {}
    for f in files:
        path = Path(f)
        doc = _resolve_paths(_read_yaml(path), path.resolve().parent)
        merged = deep_merge(merged, doc)
        for leaf in _leaf_paths(doc):
            origin[leaf] = str(f)
    for text in overrides or []:
        keys, value = parse_override(text)
        doc = _nest(keys, value)
        merged = deep_merge(merged, _resolve_paths(doc, Path.cwd()))
        for leaf in _leaf_paths(doc):
            origin[leaf] = f"--set {text}"
    merged.setdefault("run_name", Path(files[0]).stem)
    return _validate(merged, origin, str(files[0]))


def require_tables(params: Params, files) -> None:
    """Stop when the merged params name no table under ``data``: such a file is an overlay (a language, a title)
    meant to be merged onto one that does, and a run of it alone would do nothing and report success.

    Raises
    ------
    ParamsError
        Naming ``data`` and the params files beside the first one that do name tables.
    """
    if params.tables():
        return
    files = [Path(f) for f in files]
    folder = files[0].parent if files else Path.cwd()
    bases = []
    for candidate in sorted(folder.glob("*.y*ml")):
        try:
            doc = yaml.safe_load(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("data"), dict) and doc["data"]:
            bases.append(candidate)
    named = " ".join(str(f) for f in files)
    hint = (f"; merge it onto a file that does, e.g. `funnel-lab run {bases[0]} {named}`" if bases else
            "; add `data: {opportunities: {path: ...}}` or merge it onto a params file that names the tables")
    raise ParamsError(f"{named or 'params'}: key 'data': names no table ({', '.join(TABLES)}), "
                      f"so there is nothing to run{hint}")


def update_params(params: Params, changes: Mapping[str, Any]) -> Params:
    """``params`` with some keys set anew, validated again: what ``--set`` does, with Python values.

    Parameters
    ----------
    params : Params
    changes : mapping
        Dotted key -> value, e.g. ``{"stages.rules.intent": "meetings >= 2", "language": "zh"}``; a mapping value
        merges into the mapping at its key, anything else replaces it. Relative paths resolve against the working
        directory.

    Raises
    ------
    ParamsError
        A key that is not dotted, or a value the params do not accept (naming the key, with a did-you-mean).
    """
    merged = resolved_dict(params)
    origin: dict[tuple, str] = {}
    for key, value in changes.items():
        keys = str(key).split(".")
        if any(not k.strip() for k in keys):
            raise ParamsError(f"with_params: {key!r}: expected a dotted key such as 'stages.rules.intent'")
        doc = _nest(keys, str(value) if isinstance(value, Path) else value)
        merged = deep_merge(merged, _resolve_paths(doc, Path.cwd()))
        for leaf in _leaf_paths(doc):
            origin[leaf] = f"with_params {key}"
    return _validate(merged, origin, "with_params")


def _validate(merged: dict, origin: dict[tuple, str], default_file: str) -> Params:
    if isinstance(merged.get("stages"), str):
        merged["stages"] = read_stage_file(Path(merged["stages"]))
    try:
        return Params.model_validate(merged)
    except ValidationError as e:
        raise ParamsError("\n".join(_describe(err, origin, default_file) for err in e.errors())) from None


def read_stage_file(path: Path) -> Any:
    """A stage model kept in its own YAML file: a ``stages:`` mapping, or the mapping at the file's top level."""
    doc = _read_yaml(path)
    return _resolve_paths({"stages": doc.get("stages", doc)}, path.resolve().parent)["stages"]


def _nest(keys: list[str], value: Any) -> dict:
    out: Any = value
    for k in reversed(keys):
        out = {k: out}
    return out


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for did-you-mean)."""
    model: Any = Params
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None if part not in TABLES else TableSource
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if getattr(arg, "__args__", None):
            inner = _inner_model(arg)
            if inner is not None:
                return inner
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _describe(err: dict, origin: dict[tuple, str], default_file: str) -> str:
    loc = tuple(str(p) for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    loc = tuple(p for p in loc if p not in ("TableSource",))
    where = next((origin[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in origin), default_file)
    key = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc)
        choices = list(model.model_fields) if model else []
        return f"{where}: unknown key '{key}'{did_you_mean(loc[-1], choices)}"
    if kind == "missing":
        return f"{where}: missing required key '{key}'"
    got = err.get("input")
    got_text = "" if isinstance(got, dict) else f", got {got!r}"
    msg = re.sub(r"^Value error, ", "", err["msg"])
    return f"{where}: key '{key}': {msg}{got_text}"


def resolved_dict(params: Params) -> dict:
    """The validated params as plain YAML/JSON-ready data (paths as strings, dates as ISO text)."""
    return params.model_dump(mode="json", exclude_none=True)


def masked_dict(params: Params) -> dict:
    """:func:`resolved_dict` for manifests and reports: passwords in database and SMTP URLs masked, a webhook's
    path (where its token lives) too."""
    out = resolved_dict(params)
    for src in out.get("data", {}).values():
        if src.get("database"):
            src["database"] = mask_url(src["database"])
    alerts = out.get("alerts", {})
    if "webhook" in alerts:
        alerts["webhook"]["url"] = mask_webhook(alerts["webhook"]["url"])
    if "email" in alerts:
        alerts["email"]["smtp_url"] = mask_url(alerts["email"]["smtp_url"])
    return out


def mask_webhook(url: str) -> str:
    """``https://hooks.example.com/services/T0/B0/secret`` -> ``https://hooks.example.com/***``; ``${VAR}`` and
    a bare host unchanged."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^/?#]+)[/?#].+$", r"\1/***", mask_url(url), flags=re.I)


def mask_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``; anything else unchanged."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(url))
