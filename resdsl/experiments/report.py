"""`resdsl report`: runs -> the paper's artefacts. Table 6 (layers and params from the IR via recipe.json, the
final test error from summary.json, best (mean ± std) over seeds, plain and residual apart, the paper's values
beside), Fig. 6 (train error dashed, test error solid; plain left, residual right; a colour per depth), Fig. 4
for ImageNet runs (top-1 error), as PNG and SVG, and report.html holding all of it (images inlined)."""

from __future__ import annotations

import base64
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from resdsl.diagnostics import InputError
from resdsl.experiments import paper
from resdsl.experiments.runs import RunRecord, find_runs, read_run
from resdsl.train.plots import draw_error_curves, pyplot, save_figure


@dataclass
class Row:
    """One configuration: its seeds' runs, measured and the paper's values."""

    runs: list[RunRecord]
    references: list[paper.Reference] = field(default_factory=list)

    @property
    def first(self) -> RunRecord:
        return self.runs[0]

    @property
    def method(self) -> str:
        r = self.first
        name = f"plain-{r.layers}" if r.plain else f"ResNet-{r.layers}"
        if not r.plain and r.shortcut != "A":
            name += f" {r.shortcut}"
        return name

    @property
    def errors(self) -> list[float]:
        """Final test errors (%) of the finished runs, from summary.json."""
        return [100 * float(r.summary["final_test_error"]) for r in self.runs if r.summary is not None]

    def measured(self) -> str:
        """As the paper prints Table 6: one run's error, or best (mean±std) over seeds (sample std)."""
        errors = self.errors
        if not errors:
            return "unfinished"
        if len(errors) == 1:
            return f"{errors[0]:.2f}"
        return f"{min(errors):.2f} ({statistics.mean(errors):.2f}±{statistics.stdev(errors):.2f})"

    def ten_crop(self) -> str:
        """ImageNet: the 10-crop top-1/top-5 errors of `resdsl eval --crops 10`, averaged over the seeds."""
        found = [r.evaluation["10-crop"] for r in self.runs if r.evaluation and "10-crop" in r.evaluation]
        if not found:
            return ""
        top1 = statistics.mean(100 * float(e["top1_error"]) for e in found)
        top5 = [100 * float(e["top5_error"]) for e in found if "top5_error" in e]
        return f"top-1 {top1:.2f}" + (f", top-5 {statistics.mean(top5):.2f}" if top5 else "")


def group(records: list[RunRecord]) -> list[Row]:
    """Runs of one setting (all but the seed) in one row; plain before residual, then by depth."""
    rows: dict[tuple, Row] = {}
    for r in sorted(records, key=lambda r: (r.seed, str(r.path))):
        rows.setdefault(r.setting, Row([])).runs.append(r)
    for row in rows.values():
        r = row.first
        row.references = paper.lookup(r.dataset, r.plain, r.layers, r.shortcut)
    return sorted(rows.values(), key=lambda row: (row.first.dataset, not row.first.plain, row.first.layers, row.method))


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def table(rows: list[Row]) -> list[list[str]]:
    """Header and rows: data set, method, layers, params, runs, test error (%), 10-crop, the paper's value."""
    imagenet = any(r.first.dataset == "imagenet" for r in rows)
    head = ["data", "method", "# layers", "# params", "runs", "test error (%)"]
    head += ["10-crop (%)"] if imagenet else []
    head.append("paper (%)")
    body = []
    for row in rows:
        r = row.first
        done = len(row.errors)
        runs = f"{done}" if done == len(row.runs) else f"{done} of {len(row.runs)}"
        line = [r.dataset, row.method, str(r.layers), _params(r.params), runs, row.measured()]
        line += [row.ten_crop()] if imagenet else []
        line.append("; ".join(f"{ref.text} ({ref.table})" for ref in row.references) or "-")
        body.append(line)
    return [head, *body]


def markdown(cells: list[list[str]]) -> str:
    head, *body = cells
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(line) + " |" for line in body]
    return "\n".join(lines)


def text_table(cells: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    out = []
    for k, line in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------- figures


def mean_curve(runs: list[RunRecord]) -> list[dict[str, float]]:
    """The seeds' metrics averaged at the iterations every one of them logged."""
    common = set.intersection(*(set(r["iteration"] for r in run.rows) for run in runs)) if runs else set()
    curve = []
    for it in sorted(common):
        at = [next(r for r in run.rows if r["iteration"] == it) for run in runs]
        curve.append({k: statistics.mean(a[k] for a in at) for k in ("iteration", "train_error", "test_error")})
    return curve


def figure(rows: list[Row], title: str, ylabel: str):
    """Plain nets left, residual nets right; a colour per depth, train dashed and test solid."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    depths = sorted({row.first.layers for row in rows})
    for ax, plain in zip(axes, (True, False)):
        panel = [row for row in rows if row.first.plain == plain]
        for row in panel:
            curve = mean_curve([r for r in row.runs if r.rows])
            if curve:
                colour = f"C{depths.index(row.first.layers) % 10}"
                label = row.method + (f" ({len(row.runs)} seeds)" if len(row.runs) > 1 else "")
                draw_error_curves(ax, curve, colour, label)
        ax.set_title(("plain" if plain else "residual") + ("" if panel else " (no runs)"))
        ax.set_xlabel("iteration")
        ax.grid(True, alpha=0.3)
        if panel:
            ax.legend(fontsize=7)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(f"{title}: dashed = training error, bold = test error")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- the report


@dataclass
class Written:
    table_text: str
    files: list[Path]


def write(dirs: list[Path], out: Path) -> Written:
    """Read the runs under `dirs`; write table.md, fig6.png/svg, fig4.png/svg (ImageNet runs) and report.html."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("resdsl report needs matplotlib: pip install 'resdsl[plot]'")
    from resdsl.train.rundir import atomic_write

    records = [read_run(p) for p in find_runs(dirs)]
    rows = group(records)
    cells = table(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    figures: list[tuple[str, str, bytes]] = []  # (title, file stem, png)
    for stem, title, ylabel, chosen in (
        ("fig6", "Fig. 6-style", "error (%)", [r for r in rows if r.first.dataset != "imagenet"]),
        ("fig4", "Fig. 4-style, ImageNet", "top-1 error (%)", [r for r in rows if r.first.dataset == "imagenet"]),
    ):
        if not chosen:
            continue
        for fmt in ("png", "svg"):
            save_figure(figure(chosen, title, ylabel), out / f"{stem}.{fmt}", fmt)
            files.append(out / f"{stem}.{fmt}")
        figures.append((title, stem, (out / f"{stem}.png").read_bytes()))
    atomic_write(out / "table.md", markdown(cells) + "\n")
    files.append(out / "table.md")
    html = render_html(dirs, rows, cells, figures, records)
    atomic_write(out / "report.html", html)
    files.append(out / "report.html")
    return Written(text_table(cells), files)


def _sweep_status(dirs: list[Path]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The state of every point of each sweep directory given (done, failed with its error, ...)."""
    import importlib.util

    from resdsl.experiments import sweep

    found = []
    for d in dirs:
        if not (Path(d) / sweep.SWEEP_FILE).exists() or importlib.util.find_spec("optuna") is None:
            continue
        try:
            rows = sweep.status(Path(d))
        except InputError as err:  # a sweep on a server database: its URL is not stored
            found.append((str(d), [("", "unknown", str(err))]))
            continue
        found.append(
            (
                str(d),
                [
                    (n, s.state, f"test error {100 * s.value:.2f}%" if s.value is not None else s.detail)
                    for n, s in rows
                ],
            )
        )
    return found


_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>resdsl report</title>
<style>
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; } .small { font-size: 12px; color: #555; }
img { max-width: 100%; }
</style></head><body>
<h1>resdsl report</h1>
<p class="small">From {{ dirs|join(", ") }}: {{ records|length }} runs. Test errors are the final test error of
each run (summary.json); several seeds read as best (mean±std, sample standard deviation), as the paper's
Table 6 prints ResNet-110. Layers and params come from the network's IR (recipe.json).</p>
<h2>Table 6-style: test error</h2>
<table><tr>{% for h in cells[0] %}<th>{{ h }}</th>{% endfor %}</tr>
{% for line in cells[1:] %}<tr>{% for c in line %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
{% for title, stem, png in figures %}
<h2>{{ title }}</h2>
<img alt="{{ title }}" src="data:image/png;base64,{{ png }}">
<p class="small">Also {{ stem }}.png and {{ stem }}.svg beside this page.</p>
{% endfor %}
{% if references %}<h2>The paper's values</h2><ul class="small">
{% for ref in references %}<li>{{ ref }}</li>{% endfor %}</ul>{% endif %}
{% for where, states in status %}
<h2>Sweep {{ where }}</h2>
<table><tr><th>run</th><th>state</th><th>detail</th></tr>
{% for name, state, detail in states %}<tr><td>{{ name }}</td><td>{{ state }}</td><td>{{ detail }}</td></tr>{% endfor %}
</table>{% endfor %}
<h2>Runs</h2>
<table><tr><th>run directory</th><th>network</th><th>--set</th><th>seed</th><th>iterations</th>
<th>final test error (%)</th></tr>
{% for r in records %}<tr><td>{{ r.path }}</td><td>{{ r.network }}</td><td>{{ r.sets|join(" ") }}</td>
<td class="num">{{ r.seed }}</td><td class="num">{{ r.summary.iterations if r.summary else "unfinished" }}</td>
<td class="num">{{ "%.2f"|format(100 * r.summary.final_test_error) if r.summary else "" }}</td></tr>{% endfor %}
</table>
</body></html>
"""


def render_html(dirs, rows: list[Row], cells, figures, records) -> str:
    import jinja2

    references = sorted({f"{ref.table}: {ref.citation}" for row in rows for ref in row.references})
    template = jinja2.Environment(autoescape=True).from_string(_TEMPLATE)
    return template.render(
        dirs=[str(d) for d in dirs],
        cells=cells,
        figures=[(t, s, base64.b64encode(png).decode()) for t, s, png in figures],
        references=references,
        status=_sweep_status(dirs),
        records=records,
    )
