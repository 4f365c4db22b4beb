"""The benchmark harness: Ordermesh, the baselines and the ceiling, side by side under wrk.

`bench/run.py` is the command; these modules are its parts, one concern each:
plan (what to run), implementations (start, stop, drain), dataset (COPY seeding and
the token/id files wrk rotates through), scenarios and wrk (load), processes (RSS, CPU),
pinning (taskset-like CPU affinity), export and events (the non-wrk measures), runner
(the loop), report, targets and plots (what comes out).
"""
