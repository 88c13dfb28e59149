"""The report step: the notebooks' pages, in the report language.

One module per notebook (:mod:`.data_quality`, :mod:`.stage_design`, :mod:`.funnel`, :mod:`.regression`,
:mod:`.ab_test`, :mod:`.targeting`, :mod:`.forecast_monitoring`: summary sentences and ``show_*`` sections that
take the session and an analysis result), :mod:`.plots` (charts: data in, Axes out) and :mod:`.session` (the
notebook's handle on its run, the only module that imports IPython).
"""
