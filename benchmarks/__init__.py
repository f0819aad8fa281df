"""Runnable comparisons (``make bench``): tables of ratios measured side by side in one run."""
