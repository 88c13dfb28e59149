"""The one pipeline from params to staged opportunities, behind every entry point.

``funnel-lab run`` plans with it, every notebook's session holds one, ``funnel-lab check`` and ``funnel-lab stages``
print from one, and an analyst holds one in JupyterLab (:func:`load`). Its steps, each computed once and only when
asked for::

    params -> table (read, mapped) -> cleaned (audit, quarantine) -> validation
           -> history (ids following the dedupe) -> as_of -> activity log and behaviour features -> opportunities
           -> stage model -> stages, stage metrics -> the analyses (one method per report)

Steps are remembered by what they are computed from (the params they read and the steps before them), in a store
that :meth:`Pipeline.with_params` shares: changing a stage rule re-uses the cleaned tables. A pipeline with a
``cache_dir`` (a run's ``.cache/``) also reads the expensive steps that the run's plan saved there
(:meth:`Pipeline.save_cache`), checked against the params, the inputs' checksums, the analysis date and the code, so
that a run reads and cleans every table once however many notebooks it runs.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import pickle
import time
from collections.abc import Callable, Mapping
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from . import files
from .config import Params, SnapshotSource, load_params, require_tables, resolved_dict, update_params
from .errors import ParamsError

#: The run folder's working folder: the steps the plan computed, for the run's notebooks; removed when the run ends.
RUN_CACHE = ".cache"
#: Steps worth keeping for the notebooks of a run (the rest take milliseconds). The merged steps are kept too, so
#: that a notebook holds only what it reads (the opportunities with their features, not also the tables and the
#: activity log they were made from).
CACHED_STEPS = ("table", "cleaned", "validation", "activities", "history", "as_of", "opportunities", "durations",
                "deal_states")
#: Set to a file path, and every step appends a JSON line saying what it did and how long it took (a profile of a
#: run: the runner's kernels inherit the variable).
TRACE_VARIABLE = "FUNNEL_LAB_TRACE"


def load(*params_files: str | Path, set: Mapping[str, Any] | None = None,  # noqa: A002
         overrides: list[str] | None = None, cache_dir: str | Path | None = None) -> Pipeline:
    """The pipeline of one or more params files; nothing is read until a table is asked for.

    Every entry point builds its pipeline here: ``funnel-lab run``/``check``/``stages``, a notebook's session and
    the analyst's ``fl.load``.

    Parameters
    ----------
    *params_files : path
        Params YAML files, deep-merged left to right (as ``funnel-lab run`` takes them).
    set : mapping, optional
        Dotted key -> value, applied after the merge (as ``--set``, with Python values).
    overrides : list of str, optional
        ``dotted.key=value`` strings, as given to ``--set`` on the command line.
    cache_dir : path, optional
        A run's ``.cache/`` folder to read saved steps from.

    Returns
    -------
    Pipeline

    Raises
    ------
    ParamsError
        Bad params: the file, the key and what was expected; params that name no table under ``data``.

    Examples
    --------
    >>> import funnel_lab as fl
    >>> p = fl.load("params/demo.yaml", "params/examples/demo_behaviour.yaml")  # doctest: +SKIP
    >>> p.stage_metrics  # doctest: +SKIP
    >>> q = p.with_params({"stages.rules.intent": "meetings >= 2"})  # doctest: +SKIP
    >>> q.stage_design()  # doctest: +SKIP
    """
    params = load_params(list(params_files), overrides)
    params = update_params(params, set) if set else params
    require_tables(params, params_files)
    return Pipeline(params, cache_dir=cache_dir)


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of funnel_lab's code: a cached step is only taken by the code that would compute it alike."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _trace(step: str, name: str, source: str, seconds: float) -> None:
    path = os.environ.get(TRACE_VARIABLE)
    if path:
        line = json.dumps({"pid": os.getpid(), "step": step, "table": name, "source": source,
                           "seconds": round(seconds, 4)})
        with open(path, "a", encoding="utf-8") as f:  # one short line per write: appends do not interleave
            f.write(line + "\n")


class _Store:
    """Computed steps by key, shared by a pipeline and those :meth:`Pipeline.with_params` makes from it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.named: dict[str, tuple[str, str]] = {}  # key -> (step, table) for the steps worth keeping on disk


class Pipeline:
    """Params -> cleaned tables -> behaviour features -> stages, each step computed once, on demand.

    Parameters
    ----------
    params : Params
        From :func:`funnel_lab.config.load_params` (or use :func:`load`).
    cache_dir : path, optional
        A run's ``.cache/`` folder to read saved steps from (the runner passes it to the notebooks).

    Attributes
    ----------
    params : Params

    Examples
    --------
    >>> p = load("params/demo.yaml")  # doctest: +SKIP
    >>> p.opportunities.shape, p.as_of  # doctest: +SKIP
    >>> p.funnel().summary  # doctest: +SKIP
    """

    def __init__(self, params: Params, *, cache_dir: str | Path | None = None, _store: _Store | None = None) -> None:
        self.params = params
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._store = _store or _Store()

    def with_params(self, changes: Mapping[str, Any]) -> Pipeline:
        """A pipeline with some params changed that re-uses every step those params do not touch.

        Parameters
        ----------
        changes : mapping
            Dotted key -> value, e.g. ``{"stages.rules.intent": "meetings >= 2"}``.

        Examples
        --------
        >>> q = p.with_params({"stages.rules.intent": "meetings >= 2"})  # doctest: +SKIP
        >>> q.stage_metrics  # the cleaned tables are p's: only the stages are computed again  # doctest: +SKIP
        """
        return Pipeline(update_params(self.params, changes), cache_dir=self.cache_dir, _store=self._store)

    # ------------------------------------------------------------------------------------------ the step store

    def _section(self, *path: str) -> Any:
        """A params section as plain JSON data (``_section("data", "opportunities")``)."""
        obj: Any = self.params
        for part in path:
            obj = getattr(obj, part)
        return obj.model_dump(mode="json") if hasattr(obj, "model_dump") else obj

    def _table_section(self, name: str) -> Any:
        """A table's params as plain JSON data (the stage history built from ``data.snapshots`` included)."""
        return self._source(name).model_dump(mode="json")

    def _step(self, step: str, name: str, inputs: list, compute: Callable[[], Any]) -> Any:
        """The value of a step computed from ``inputs`` (params sections, upstream values' keys): remembered,
        else read from the run cache, else computed."""
        key = _digest([step, name, inputs])
        store = self._store
        if key in store.values:
            return store.values[key]
        start, source = time.perf_counter(), "computed"
        value = self._cached(step, name, key)
        if value is _MISSING:
            value = compute()
        else:
            source = "run cache"
        _trace(step, name, source, time.perf_counter() - start)
        store.values[key] = value
        if step in CACHED_STEPS:
            store.named[key] = (step, name)
        return value

    def _disk_name(self, step: str, name: str, key: str) -> str:
        disk_key = _digest([key, self.checksums, code_fingerprint()])
        return f"{step}-{name or 'all'}-{disk_key[:32]}.pickle"

    def _cached(self, step: str, name: str, key: str) -> Any:
        if self.cache_dir is None or step not in CACHED_STEPS:
            return _MISSING
        path = self.cache_dir / self._disk_name(step, name, key)
        try:
            with path.open("rb") as f:
                # written by this run's plan for its own kernels (the name carries the checksums and the code)
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return _MISSING

    def save_cache(self, folder: str | Path) -> int:
        """Keep the expensive steps computed so far in ``folder`` for pipelines of the same params, inputs and code
        (a run's notebooks). Returns how many were written; a step that cannot be written (a full disk) is left out.
        """
        folder, written = Path(folder), 0
        for key, (step, name) in list(self._store.named.items()):
            try:
                files.write_pickle(folder / self._disk_name(step, name, key), self._store.values[key])
                written += 1
            except (OSError, pickle.PicklingError):
                pass
        return written

    # ------------------------------------------------------------------------------------------------ inputs

    @property
    def checksums(self) -> dict[str, str]:
        """SHA-256 of every input: each table's source (a SQL source: its masked URL and query) and lookup files."""
        from .data.ingest import file_sha256, source_sha256

        def compute() -> dict[str, str]:
            # a missing file has no checksum: reading it says which file and where it is expected
            out = {}
            for name, src in self.params.tables().items():
                out[name] = source_sha256(src) if src.path is None or Path(src.path).is_file() else ""
                for i, j in enumerate(src.join):
                    out[f"{name}.join[{i}]"] = file_sha256(j.path) if Path(j.path).is_file() else ""
            return out

        return self._step("checksums", "", [self._section("data")], compute)

    def table(self, name: str):
        """One input table as read and mapped onto canonical names (:class:`~funnel_lab.data.ingest.Table`)."""
        from .data.ingest import load_table
        from .data.snapshots import load_snapshots

        src = self._source(name)
        if isinstance(src, SnapshotSource):  # placeholders decide which snapshot cells are blank stages
            return self._step("table", name, [self._table_section(name), self._section("cleaning", "placeholders")],
                              lambda: load_snapshots(src, placeholders=self.params.cleaning.placeholders,
                                                     sha256=self.checksums[name] or None))
        return self._step("table", name, [self._table_section(name)],
                          lambda: load_table(src, table=name, sha256=self.checksums[name] or None))

    def _source(self, name: str):
        src = self.params.tables().get(name)
        if src is None or name == "activities":
            what = "the activity log is read by activity_log" if name == "activities" else "not in the params"
            raise ParamsError(f"data.{name}: {what}; tables: {', '.join(self.table_names) or 'none'}")
        return src

    @property
    def table_names(self) -> list[str]:
        """The configured tables read into memory (the activity log is aggregated where it lies instead)."""
        return [n for n in self.params.tables() if n != "activities"]

    @property
    def tables(self) -> dict:
        """Every configured table as read and mapped, by name (:meth:`table`)."""
        return {n: self.table(n) for n in self.table_names}

    # ------------------------------------------------------------------------------------------------ cleaning

    def cleaned_table(self, name: str):
        """One table after cleaning (:class:`~funnel_lab.data.clean.Cleaned`: data, audit, quarantine, ...)."""
        from .data.clean import clean_table

        src = self._source(name)
        return self._step("cleaned", name, [self._table_section(name), self._section("cleaning")],
                          lambda: clean_table(self.table(name), self.params.cleaning, date_format=src.date_format))

    @property
    def cleaned(self) -> dict:
        """Every table after cleaning, by name (:meth:`cleaned_table`)."""
        return {n: self.cleaned_table(n) for n in self.table_names}

    @property
    def validation(self) -> pd.DataFrame:
        """Schema failures of the cleaned tables, every one at once (empty when valid)."""
        from .data.schemas import FAILURE_COLUMNS, validate_table

        def compute() -> pd.DataFrame:
            parts = [v for n, c in self.cleaned.items() if len(v := validate_table(c.data, n))]
            return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS)

        return self._step("validation", "", self._cleaning_inputs(), compute)

    def _cleaning_inputs(self) -> list:
        return [{n: self._table_section(n) for n in self.table_names}, self._section("cleaning")]

    @property
    def history(self) -> pd.DataFrame | None:
        """The cleaned stage history, its ids following the dedupe (a merged duplicate's rows go to the record kept);
        None without ``data.stage_history``."""
        if "stage_history" not in self.table_names:
            return None

        def compute() -> pd.DataFrame:
            h = self.cleaned_table("stage_history").data
            merged = (self.cleaned_table("opportunities").merged_ids if "opportunities" in self.table_names
                      else pd.Series(dtype="str"))
            if merged.empty:
                return h
            return h.assign(opportunity_id=h["opportunity_id"].map(merged.astype("str")).fillna(h["opportunity_id"]))

        return self._step("history", "", self._cleaning_inputs(), compute)

    @property
    def as_of(self) -> pd.Timestamp:
        """The analysis date every report uses: ``features.as_of``, else the day after the latest date in the
        cleaned opportunities and history (not the clock, so that a rerun gives the same numbers)."""
        from .analysis.funnel import data_as_of

        return self._step("as_of", "", self._cleaning_inputs() + [self._section("features")],
                          lambda: data_as_of(self._opportunities_cleaned.data, self.history, self.params.features.as_of))

    @property
    def _opportunities_cleaned(self):
        if "opportunities" not in self.table_names:
            raise ParamsError("data.opportunities: this needs an opportunities table in the params")
        return self.cleaned_table("opportunities")

    # ------------------------------------------------------------------------------------- behaviour features

    @property
    def activity_log(self):
        """The checked activity log and its behaviour features (:class:`~funnel_lab.data.activities.ActivityLog`);
        None without ``data.activities``."""
        from .data.activities import load_activity_log

        src = self.params.data.activities
        if src is None:  # (with one, the params guarantee an opportunities table)
            return None
        opps, f = self._opportunities_cleaned, self.params.features

        def compute():
            return load_activity_log(src, opps.data, as_of=self.as_of, windows=f.windows,
                                     days_before_close=f.days_before_close, placeholders=self.params.cleaning.placeholders,
                                     merged_ids=opps.merged_ids, sha256=self.checksums["activities"] or None,
                                     engine=self.params.engine)

        return self._step("activities", "", self._feature_inputs() + [str(self.as_of), self._section("engine")],
                          compute)

    def _feature_inputs(self) -> list:
        return [self._section("data"), self._section("cleaning"), self._section("features")]

    @property
    def opportunities(self) -> pd.DataFrame:
        """The cleaned opportunities with their behaviour features: ``data/opportunities_clean.csv``."""
        from .data.activities import with_features

        return self._step("opportunities", "", self._feature_inputs(),
                          lambda: with_features(self._opportunities_cleaned.data, self.activity_log))

    # ------------------------------------------------------------------------------------------------- stages

    @cached_property
    def _stage_models(self):
        from .analysis.stages import load_models

        if self.params.stages is None:
            raise ParamsError("stages: no stage model in the params (give stages.order and rules or score)")
        return load_models(self.params.stages, self.opportunities.columns)

    @property
    def stage_model(self):
        """The params' stage model, parsed, whitelisted and checked against the columns (nothing evaluated yet).

        Raises
        ------
        ParamsError
            No ``stages:``, no rules or score, a refused expression or an unknown column (with a did-you-mean).
        """
        return self._stage_models[0]

    @property
    def compare_model(self):
        """The ``stages.compare_with`` model, checked as :attr:`stage_model` is (None when not set)."""
        return self._stage_models[1]

    @cached_property
    def stages(self) -> pd.DataFrame:
        """The stage of every cleaned opportunity: ``data/stages.csv`` (``opportunity_id``, ``stage``,
        ``stage_rank``, ``score``)."""
        from .analysis.stages import assign_stages

        return assign_stages(self.opportunities, self.stage_model)

    @cached_property
    def stage_metrics(self) -> pd.DataFrame:
        """Counts and closed win rate per stage with Wilson 95% intervals: ``data/stage_metrics.csv``."""
        from .analysis.stages import stage_metrics

        return stage_metrics(self.stages, self.opportunities["won"], self.stage_model)

    def stage_labels(self, lang: str | None = None) -> dict[str, str]:
        """Stage -> its label in ``lang`` (the report language by default), won/lost and unassigned included."""
        from .i18n import t

        lang = lang or self.params.language
        cfg = self.params.stages
        own = cfg.labels.get(lang, {}) if cfg else {}
        return {"unassigned": t("stage.unassigned", lang), "won": t("headline.won", lang),
                "lost": t("headline.lost", lang), **{s: own.get(s, s) for s in (cfg.order if cfg else [])}}

    # ------------------------------------------------------------------------------------ time in stage, state

    @property
    def stage_durations(self) -> pd.DataFrame | None:
        """Days each deal spent in each stage of ``stages.order`` (:func:`~funnel_lab.analysis.funnel.stage_durations`);
        None without a stage history."""
        from .analysis.funnel import stage_durations
        from .engine import open_engine

        if self.history is None or self.params.stages is None:
            return None

        def compute() -> pd.DataFrame:
            with open_engine(self.params.engine) as engine:
                return stage_durations(self.history, self.opportunities, list(self.params.stages.order),
                                       as_of=self.as_of, engine=engine)

        inputs = self._feature_inputs() + [list(self.params.stages.order), self._section("engine")]
        return self._step("durations", "", inputs, compute)

    @property
    def deal_states(self) -> pd.DataFrame:
        """Every deal's status, stage, expected close, amount and stalled flag: what the run history keeps
        (:func:`~funnel_lab.history.changes.deal_states`)."""
        from .analysis.funnel import stalled_deals, time_in_stage
        from .history.changes import deal_states

        def compute() -> pd.DataFrame:
            durations, cfg = self.stage_durations, self.params.stages
            stalled = (stalled_deals(durations, time_in_stage(durations, list(cfg.order)))["opportunity_id"]
                       if durations is not None else [])
            stages = None
            if cfg and (cfg.rules or cfg.score):
                try:
                    stages = self.stages
                except ParamsError:
                    pass  # a stage model that cannot run: the stage-design report says why; the history goes on
            return deal_states(self.opportunities, stages, stalled)

        inputs = self._feature_inputs() + [self._section("stages"), self._section("engine")]
        return self._step("deal_states", "", inputs, compute)

    @property
    def run_id(self) -> str:
        """This run's id in the run history: its analysis date and a digest of the params and inputs (a rerun on
        the same inputs has the same id)."""
        from .history.store import run_id

        params = {k: v for k, v in resolved_dict(self.params).items() if k not in ("alerts", "title")}
        params.get("monitoring", {}).pop("history", None)
        return run_id(self.as_of, params, self.checksums)

    def history_store(self, folder: str | Path | None = None):
        """The run history (:class:`~funnel_lab.history.store.RunHistory`) in ``folder``, else
        ``monitoring.history``, else ``reports/<run_name>/history`` in the working directory."""
        from .history.store import RunHistory

        cfg = self.params.monitoring
        where = folder or cfg.history or Path.cwd() / "reports" / self.params.run_name / "history"
        return RunHistory(Path(where), keep_deals=cfg.history_deal_runs)

    def since_last_run(self, history: str | Path | None = None):
        """This run against the last one in the run history (``history``: its folder, see :meth:`history_store`):
        :class:`~funnel_lab.history.changes.SinceLastRun`, with ``data/changes.csv``."""
        from .history.changes import SinceLastRun

        store = self.history_store(history)
        rid = self.run_id
        previous = store.previous(rid)
        before = store.deals(previous[-1]["run_id"]) if previous else None
        order = list(self.params.stages.order) if self.params.stages else []
        return SinceLastRun.compare(rid, self.as_of, self.deal_states, previous, before, order)

    # ----------------------------------------------------------------------------------------------- analyses

    def _analysis(self, name: str, run: Callable[[Pipeline], Any]) -> Any:
        results = self.__dict__.setdefault("_results", {})
        if name not in results:
            results[name] = run(self)
        return results[name]

    def data_quality(self):
        """What is in the data and what cleaning did (``00_data_quality``): :class:`~funnel_lab.data.quality.DataQuality`."""
        from .data.quality import analyse_data_quality

        return self._analysis("data_quality", analyse_data_quality)

    def stage_design(self):
        """Do the stage criteria mean anything (``10_stage_design``): :class:`~funnel_lab.analysis.stages.StageDesign`."""
        from .analysis.stages import analyse_stage_design

        return self._analysis("stage_design", analyse_stage_design)

    def funnel(self):
        """Where deals flow and stall (``20_funnel``): :class:`~funnel_lab.analysis.funnel.FunnelResult`."""
        from .analysis.funnel import analyse_funnel

        return self._analysis("funnel", analyse_funnel)

    def regression(self):
        """What drives wins (``30_regression``): :class:`~funnel_lab.analysis.regression.RegressionResult`."""
        from .analysis.regression import analyse_regression

        return self._analysis("regression", analyse_regression)

    def ab_test(self):
        """Did the change work (``40_ab_test``): :class:`~funnel_lab.analysis.abtest.ABResult`."""
        from .analysis.abtest import analyse_ab_test

        return self._analysis("ab_test", analyse_ab_test)

    def targeting(self):
        """Whom to call first (``50_targeting``): :class:`~funnel_lab.analysis.targeting.TargetingResult`."""
        from .analysis.targeting import analyse_targeting

        return self._analysis("targeting", analyse_targeting)

    def forecast(self):
        """What the coming periods will bring (``60_forecast_monitoring``):
        :class:`~funnel_lab.analysis.forecast.ForecastResult`."""
        from .analysis.forecast import analyse_forecast

        return self._analysis("forecast", analyse_forecast)

    def monitoring(self):
        """What changed in the latest period (``60_forecast_monitoring``):
        :class:`~funnel_lab.analysis.monitoring.MonitoringResult`."""
        from .analysis.monitoring import analyse_monitoring

        return self._analysis("monitoring", analyse_monitoring)

    # ------------------------------------------------------------------------------------------- the run's view

    def inputs(self) -> list[dict]:
        """Every input for the manifest and ``funnel-lab check``: table, path, sha256, rows read, rows after
        cleaning, whether ids were generated; lookups and the activity log included."""
        out = []
        for name, tbl in self.tables.items():
            out.append({"table": name, "path": tbl.source, "sha256": tbl.sha256,
                        "rows": len(tbl.raw) + (len(tbl.rejected) if tbl.rejected is not None else 0),
                        "rows_clean": len(self.cleaned_table(name).data), "ids_generated": tbl.ids_generated})
        out += [{"table": f"{name} lookup", "path": j["path"], "sha256": j["sha256"], "rows": j["lookup_rows"]}
                for name, tbl in self.tables.items() for j in tbl.joins or []]
        out += [{"table": f"{name} snapshot {r['snapshot_date']:%Y-%m-%d}", "path": r["path"], "sha256": r["sha256"],
                 "rows": int(r["deals"])}
                for name, tbl in self.tables.items() if tbl.snapshots is not None
                for r in tbl.snapshots.to_dict("records")]
        log = self.activity_log
        if log is not None:
            out.append({"table": "activities", "path": log.source, "sha256": log.sha256, "rows": log.rows,
                        "rows_clean": int(log.audit.iloc[-1]["rows_out"]), "ids_generated": False})
        return out

    @property
    def summary(self) -> pd.DataFrame:
        """One row per table: rows read, kept and removed after cleaning, columns (reads and cleans them)."""
        return self.data_quality().summary

    def _repr_html_(self) -> str:
        rows = []
        for name, src in self.params.tables().items():
            where = html.escape(f"snapshots: {', '.join(src.snapshots)}" if isinstance(src, SnapshotSource)
                                else str(src.path or f"sql: {src.sql}"))
            rows.append(f"<tr><td>{name}</td><td>{where}</td></tr>")
        return (f"<h4>funnel_lab pipeline: {html.escape(self.params.run_name)}</h4>"
                f"<table><tr><th>table</th><th>source</th></tr>{''.join(rows)}</table>"
                f"<p><small>.opportunities, .stages, .stage_metrics; .data_quality(), .stage_design(), .funnel(), "
                f".regression(), .ab_test(), .targeting(), .forecast(), .monitoring()</small></p>")

    def __repr__(self) -> str:
        return f"Pipeline({self.params.run_name!r}, tables={list(self.params.tables())})"


_MISSING = object()
