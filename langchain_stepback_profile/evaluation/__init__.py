"""Evaluation harness: LaMP and multi-author writing tasks, methods, metrics and reports."""
