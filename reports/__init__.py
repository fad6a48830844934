"""reports: renders analysis results as tables, figures and the HTML report.

Placeholder package: the report arrives with the reports issue.
"""
