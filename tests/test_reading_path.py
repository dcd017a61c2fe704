"""The book's reading path imports neither torch nor the compute machinery.

A page that only reads committed results (notebooks/05_verdicts.ipynb's first cells: the page
modules, `pages.load`, the banner, the analysis plan) runs in a fresh interpreter here, on the
committed cpu results; afterwards neither `torch` nor any `fairgap_utils.computing` module may have
been imported. The keys that tell a current result file from a stale one come from the plan's
manifest (results/cpu/plan.json, `fairgap_utils.manifest`), not from the planner, and so does what a
page says about a method (its names, summary and hyperparameters: `manifest.method_facts`).

Then every page that only reads results (all but "Evaluate your own method", which registers and
may compute a method) runs whole, every code cell as the book build runs it, in one fresh interpreter;
nor may those pages import scipy.stats: the statistics take its functions from scipy.special, which
costs a third of its import in every page that draws an interval.
"""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

PAGE = """
import json, sys
from fairgap_utils.book import dose_response, explorer, pages, plots, report, sources, verdicts
records = pages.load("cpu")
pages.banner(records)
analysis = report.analysis_of(records)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "fairgap_utils.computing")))
print(json.dumps({"loaded": loaded, "records": len(records), "profile": records.profile,
                  "labels": sorted({r["label"] for r in records})}))
"""


def test_a_page_reads_the_committed_results_without_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", PAGE], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["loaded"] == [], f"the reading path imported {seen['loaded'][:10]}"
    assert seen["profile"] == "cpu" and seen["records"] > 0       # it did read the committed results
    assert {"original", "retrain", "ft"} <= set(seen["labels"])


READING_PAGES = [("00_intro.ipynb", {}), ("01_baseline.ipynb", {}), ("02_unlearning_method.ipynb", {"method": "rl"}),
                 ("02_unlearning_method.ipynb", {"method": "keep_gap"}), ("03_layer_analysis.ipynb", {}),
                 ("04_correlation.ipynb", {}), ("05_verdicts.ipynb", {})]

PAGES = """
import json, sys
import matplotlib
matplotlib.use("Agg")
from IPython.display import display
pages = json.loads(sys.argv[1])
for path, parameters in pages:
    nb = json.load(open(path))
    scope = {"display": display}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        code = "\\n".join(line for line in "".join(cell["source"]).splitlines() if not line.startswith("%"))
        exec(compile(code, path, "exec"), scope)
        if "parameters" in cell["metadata"].get("tags", []):
            scope.update(parameters, profile="cpu")
    matplotlib.pyplot.close("all")
loaded = sorted(m for m in sys.modules
                if m in ("torch", "scipy.stats") or m.startswith(("torch.", "fairgap_utils.computing")))
print(json.dumps({"loaded": loaded}))
"""


def test_every_reading_page_runs_whole_without_torch(tmp_path):
    pages = [(f"notebooks/{name}", parameters) for name, parameters in READING_PAGES]
    out = subprocess.run([sys.executable, "-c", PAGES, json.dumps(pages)], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg",
                                           "FAIRGAP_BOOK_BUILD": "1", "FAIRGAP_PROGRESS": "0"})
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])["loaded"]
    assert loaded == [], f"a page that only reads results imported {loaded[:10]}"
