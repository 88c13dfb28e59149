"""The analysis step: DataFrames in, numbers out, no words for stakeholders and no charts.

:mod:`.expr` (whitelisted rule expressions), :mod:`.stats` (statistics shared by several analyses), :mod:`.stages`
(stage models and their checks), :mod:`.funnel`, :mod:`.monitoring`, :mod:`.forecast`, :mod:`.regression`,
:mod:`.abtest`, :mod:`.targeting`. Each module ends with ``analyse_<name>(pipeline)``, which
:class:`funnel_lab.Pipeline`'s methods call and which returns a result with ``.summary`` and ``.outputs``. Nothing
here imports a report page.
"""
