"""Metrics (as AtacWorks defines them) and the HTML report."""
