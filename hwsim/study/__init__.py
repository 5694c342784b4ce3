"""Studies and sweeps: the main job and its reports.

A study (:mod:`~hwsim.study.pipeline`) trains with each rule, fine-tunes on chip, prices and judges every chip,
exports to Lava, and writes a report (:mod:`~hwsim.study.report`) with figures (:mod:`~hwsim.study.plots`,
:mod:`~hwsim.study.figures`, :mod:`~hwsim.study.study_figures`, one palette in :mod:`~hwsim.study.palette`).
Sweeps (:mod:`~hwsim.study.sweep`) run many study points on Dask into one Parquet table.
"""
