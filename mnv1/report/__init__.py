"""The report: the paper's tables and figures rebuilt from a sweep's MLflow runs.

Entry points: :func:`mnv1.report.build.build_report` (what ``mnv1-report`` and the sweep's end
call) and :func:`mnv1.report.build.sweep_status` (``mnv1-report --status``).
"""
