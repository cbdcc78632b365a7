"""Test defaults: the quick profile and no network, unless the caller set them.

Set here (not in a fixture) so that the Jupyter kernels started by nbval inherit them too.
"""
import os

os.environ.setdefault("COURSE_PROFILE", "quick")
os.environ.setdefault("COURSE_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
