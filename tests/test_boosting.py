"""The boosted list against scikit-learn called directly, and its drivers against a hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

import funnel_lab.analysis.boosting as bo
from funnel_lab.analysis.model_inputs import stratified_sample
from funnel_lab.errors import ParamsError


def _deals(n: int = 3000, seed: int = 4) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """An additive truth: logit = -1.5 + 1.2 * demo + 0.4 * meetings - 1.0 * (source == "Outbound"); gaps in
    meetings and a level of source that only a few deals have; a column of noise."""
    rng = np.random.default_rng(seed)
    demo = rng.random(n) < 0.4
    meetings = rng.poisson(2, n).astype(float)
    source = rng.choice(["Web", "Referral", "Outbound", "Fax"], n, p=[0.45, 0.25, 0.28, 0.02])
    logit = -1.5 + 1.2 * demo + 0.4 * meetings - 1.0 * (source == "Outbound")
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(int)
    meetings[rng.random(n) < 0.1] = np.nan
    X = pd.DataFrame({"demo": pd.array(demo, dtype="boolean"), "meetings": meetings,
                      "source": pd.array(source, dtype="str"), "noise": rng.normal(size=n)})
    return X, y, p


@pytest.fixture(scope="module")
def deals():
    return _deals()


@pytest.fixture(scope="module")
def model(deals):
    X, y, _ = deals
    return bo.fit_boosted(X, y, seed=1)


def test_the_depth_search_is_cross_validated_roc_auc(deals, model):
    """Each depth's mean AUC is that of HistGradientBoostingClassifier over the same stratified folds, called here
    on the types the model reads (numbers as floats, text as categories); the best depth is chosen."""
    X, y, _ = deals
    typed = bo._as_boost_types(X, numeric=["demo", "meetings", "noise"], categorical=["source"])
    assert isinstance(typed["source"].dtype, pd.CategoricalDtype) and typed["demo"].dtype == np.float64
    folds = StratifiedKFold(bo.TUNING_FOLDS, shuffle=True, random_state=1)
    for depth, row in zip(bo.DEPTHS, model.search.itertuples()):
        aucs = []
        for train, test in folds.split(typed, y):
            hgb = HistGradientBoostingClassifier(max_depth=depth, categorical_features="from_dtype", random_state=1,
                                                 **bo.SETTINGS).fit(typed.iloc[train], y[train])
            aucs.append(roc_auc_score(y[test], hgb.predict_proba(typed.iloc[test])[:, 1]))
        assert row.mean_auc == pytest.approx(np.mean(aucs)) and row.sd_auc == pytest.approx(np.std(aucs))
    best = model.search.loc[model.search["rank"] == 1, "max_depth"].item()
    assert model.best_params["max_depth"] == best
    assert model.cv_auc["mean"] == pytest.approx(model.search["mean_auc"].max())


def test_the_chances_are_scikit_learns_sigmoid_calibration_on_held_out_folds(deals, model):
    X, y, p_true = deals
    pipe = model.calibrated.estimator
    reference = CalibratedClassifierCV(pipe, method="sigmoid", ensemble=False,
                                       cv=StratifiedKFold(bo.CALIBRATION_FOLDS, shuffle=True, random_state=1)).fit(X, y)
    np.testing.assert_allclose(model.predict_probability(X), reference.predict_proba(X)[:, 1], rtol=1e-12)
    # the sigmoid is increasing: the calibrated chances order the deals as the trees' own scores do
    raw = model.calibrated.calibrated_classifiers_[0].estimator.decision_function(X)
    assert (np.diff(model.predict_probability(X).to_numpy()[np.argsort(raw)]) >= 0).all()
    # calibrated: the chances of a fifth of the deals at a time against their true win probability
    chance = model.predict_probability(X).to_numpy()
    fifths = pd.qcut(chance, 5, labels=False)
    means = pd.DataFrame({"chance": chance, "true": p_true}).groupby(fifths).mean()
    np.testing.assert_allclose(means["chance"], means["true"], atol=0.05)
    assert roc_auc_score(y, chance) > roc_auc_score(y, p_true) - 0.03


def test_a_level_the_model_never_saw_is_read_as_missing(deals, model):
    X, _, _ = deals
    row = X.iloc[[0]]
    unseen = row.assign(source=pd.array(["Carrier pigeon"], dtype="str"))
    gap = row.assign(source=pd.array([None], dtype="str"))
    assert model.predict_probability(unseen).item() == model.predict_probability(gap).item()


def test_above_fit_rows_the_model_is_fitted_on_a_stratified_sample(deals, monkeypatch):
    X, y, _ = deals
    monkeypatch.setattr(bo, "FIT_ROWS", 1000)
    monkeypatch.setattr(bo, "TUNING_ROWS", 800)
    small = bo.fit_boosted(X, y, seed=2)
    assert (small.n_train, small.n_fit) == (len(X), 1000)
    keep = stratified_sample(len(X), y, 1000, 2)
    assert np.bincount(y[keep]).tolist() == pytest.approx(np.bincount(y) * 1000 / len(X), abs=1)


def test_drivers_against_a_hand_computation(deals, model):
    """A deal's driver for a column: its chance minus the mean chance with that column's value taken in turn from
    each background deal, computed here one swap at a time."""
    X, _, _ = deals
    rows = X.iloc[[3, 10, 42]].reset_index(drop=True)
    got = bo.score_drivers(model, rows)
    bg = model.background
    assert len(bg) == bo.DRIVER_BACKGROUND and list(got.columns) == list(X.columns)
    for i in range(len(rows)):
        p = model.predict_probability(rows.iloc[[i]]).item()
        for c in X.columns:
            swapped = pd.concat([rows.iloc[[i]]] * len(bg), ignore_index=True)
            swapped[c] = bg[c].to_numpy()
            assert got.loc[i, c] == pytest.approx(p - model.predict_probability(swapped).mean(), abs=1e-12)


def test_the_strongest_drivers_are_the_planted_ones_in_words(deals, model):
    X, _, _ = deals
    drivers = bo.score_drivers(model, X.iloc[:400])
    # the noise column moves no deal's chance much; the planted columns do, in the planted direction
    assert drivers["noise"].abs().mean() < 0.25 * drivers[["demo", "meetings", "source"]].abs().mean().min()
    demo = X["demo"].iloc[:400].to_numpy(dtype=bool)
    assert (drivers["demo"][demo] > 0).mean() > 0.95 and (drivers["demo"][~demo] < 0).mean() > 0.95
    outbound = (X["source"].iloc[:400] == "Outbound").to_numpy()
    assert (drivers["source"][outbound] < 0).all()
    text = bo.drivers_text(drivers, X.iloc[:400], k=2)
    first = int(np.flatnonzero(demo & outbound)[0])
    d = drivers.iloc[first]
    expected = [f"demo = yes ({100 * d['demo']:+.0f} pts)", f"source = Outbound ({100 * d['source']:+.0f} pts)"]
    top_two = d.abs().sort_values(ascending=False).index[:2].tolist()
    assert text.iloc[first] == "; ".join(e for c in top_two for e in expected if e.startswith(c))
    words = {"yes": "是", "points": "个百分点", "sep": "；"}
    assert "demo = 是" in bo.drivers_text(drivers, X.iloc[:400], k=3, words=words).iloc[first]
    gap = int(np.flatnonzero(X["meetings"].iloc[:400].isna().to_numpy())[0])
    tiny = drivers.iloc[[gap]].assign(**{c: 0.0 for c in X.columns}).assign(meetings=0.2)
    assert bo.drivers_text(tiny, X.iloc[[gap]]).item() == "meetings is missing (+20 pts)"
    assert bo.drivers_text(tiny * 0.001, X.iloc[[gap]]).item() == ""
    # numbers read as the rules write them: about three significant digits, whole units kept
    amounts = pd.DataFrame({"amount": [1234.6, 0.04562, 3.0]})
    moved = pd.DataFrame({"amount": [0.1, -0.1, 0.1]})
    assert bo.drivers_text(moved, amounts).tolist() == ["amount = 1235 (+10 pts)", "amount = 0.0456 (-10 pts)",
                                                        "amount = 3 (+10 pts)"]


def test_too_few_of_an_outcome_is_refused(deals):
    X, y, _ = deals
    with pytest.raises(ParamsError, match="at least 2 rows of each outcome"):
        bo.fit_boosted(X.iloc[:20], np.r_[1, np.zeros(19, int)])
