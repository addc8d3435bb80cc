"""Sphinx configuration of skbolt's documentation.

Built offline with warnings as errors (``.ci/run`` step "docs")::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The examples in ``examples/`` are run and rendered as a gallery by
sphinx-gallery; the API reference comes from the numpydoc docstrings.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import skbolt  # noqa: E402  (the installed, compiled package)

project = "skbolt"
author = "the skbolt developers"
copyright = "2026, the skbolt developers"
release = version = skbolt.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5",
                    "sg_execution_times.rst"]
root_doc = "index"

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
# numpydoc lists the methods itself; without this every class page would
# also list sklearn's inherited methods, whose docstrings are not ours
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# no network when the docs build: links to other projects stay plain text
intersphinx_mapping = {}

myst_heading_anchors = 3


def skip_metadata_requests(app, what, name, obj, skip, options):
    """scikit-learn generates ``set_*_request`` methods (metadata routing)
    whose docstrings link into its own documentation: not ours to render."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_requests)

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # run every example (not only plot_*.py) but save_and_load.py, whose
    # predictions in a spawned process cannot import a gallery script's
    # functions (the gallery shows its code; tests/test_examples.py runs it)
    "filename_pattern": r"/(?!save_and_load)[^/]*\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 1,
}
os.environ.setdefault("MPLBACKEND", "Agg")

html_theme = "furo"
html_title = f"skbolt {release}"
html_static_path = []
html_show_sourcelink = False
