#!/usr/bin/python3
"""Plots the results of an `lpusim sweep` (docs/sweeps.md) as PNG and SVG.

    python3 scripts/plot_sweep.py DIR [-o OUTDIR] [--x FIELD] [--y METRIC ...]

(FIELD: a swept field, or a numeric figure such as sram_per_chip_bytes, shown in MiB.)

Reads DIR/results.jsonl (and DIR/sweep.json for the sweep's name and swept columns) and writes,
into OUTDIR (default DIR/plots), for each metric named by --y (default latency_us):
  <sweep>-<metric>-vs-<field>.{png,svg}    a line plot of the metric against each swept field
                                           (only FIELD with --x), one line per workload/precision
                                           (and per value of the other swept fields); a log x axis
                                           when the field's values span a factor of 64 or more;
  <sweep>-<metric>-heatmap.{png,svg}       when exactly two fields are swept: the metric over both,
                                           one panel per workload/precision;
and once per sweep:
  <sweep>-pareto.{png,svg}                 latency against power of every point, one panel per
                                           workload/precision, the Pareto front (no other point
                                           is both faster and lower-power) highlighted (LLM
                                           sweeps: token latency against power).
Only points with status "ok" are plotted. Output is deterministic: Matplotlib's built-in defaults
(no user matplotlibrc), a fixed svg.hashsalt and no dates or versions in the metadata, so the same
results give the same SVG bytes. Bad input (missing or damaged results file, unknown field or
metric) exits with status 2 and a message naming the file and the field.

Needs only Python 3 and Debian's python3-matplotlib (scripts/install-deps.sh installs it).
"""
import argparse
import json
import os
import re
import sys

DEFAULT_METRIC = "latency_us"
LOG_SPAN = 64  # a swept field whose largest/smallest value is at least this gets a log x axis
MAX_FRONT_LABELS = 12  # more front points than this are not labelled (unreadable)
# Axis labels of known report figures (docs/report-schema.md); others are shown by name.
LABELS = {
    "cycles": "cycles",
    "predicted_cycles": "predicted cycles",
    "latency_us": "latency (us)",
    "energy_j": "energy (J)",
    "power_w": "power (W)",
    "instructions": "instructions",
    "chips": "chips",
    "work_items": "work items",
    "items_per_second": "items per second",
    "items_per_joule": "items per joule",
    "mxm_mac_utilization": "MXM MAC utilization",
    "tops": "TOPS",
    "sram_used_bytes": "SRAM used (bytes)",
    # LLM sweeps (`lpusim llm` reports)
    "tensor_parallel": "tensor-parallel size",
    "pipeline_stages": "pipeline stages",
    "ttft_us": "time to first token (us)",
    "token_latency_us": "token latency (us)",
    "tokens_per_second": "tokens per second",
    "tokens_per_second_per_user": "tokens per second per user",
    "tokens_per_joule": "tokens per joule",
    "token_cycles": "cycles per token",
    "compute_us": "compute per token (us)",
    "onchip_data_movement_us": "on-chip data movement per token (us)",
    "chip_to_chip_us": "chip-to-chip per token (us)",
    "sram_used_percent": "SRAM used per chip (%)",
}
# Figures in bytes shown in MiB when plotted against (--x): the name's axis label and divisor.
MIB_FIGURES = {
    "sram_per_chip_bytes": "SRAM per chip (MiB)",
    "weights_per_chip_bytes": "weights per chip (MiB)",
    "kv_cache_per_chip_bytes": "KV cache per chip (MiB)",
    "working_set_per_chip_bytes": "working set per chip (MiB)",
}


class InputError(Exception):
    """Bad input: the message names the file and the field."""


def load_json_file(path, what):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read {what} ({e.strerror}); run `lpusim sweep SPEC.yaml -o DIR` first")
    return text


def read_records(sweep_dir):
    """Records of DIR/results.jsonl in file (= point) order."""
    path = os.path.join(sweep_dir, "results.jsonl")
    text = load_json_file(path, "the sweep results file")
    records = []
    for n, line in enumerate(text.split("\n"), start=1):
        if line == "":
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not a JSON record ({e.msg}); an interrupted sweep? rerun it with --resume")
        for key in ("workload", "precision", "params", "status", "figures"):
            if not isinstance(rec, dict) or key not in rec:
                raise InputError(f"{path}:{n}: not a sweep result record (no field '{key}')")
        records.append(rec)
    if not records:
        raise InputError(f"{path}: holds no records (the sweep ran no point yet)")
    return path, records


def read_meta(sweep_dir, records):
    """Sweep name and swept columns from DIR/sweep.json (falls back to the records' params)."""
    path = os.path.join(sweep_dir, "sweep.json")
    if os.path.exists(path):
        try:
            meta = json.loads(load_json_file(path, "the sweep description"))
            return str(meta["sweep"]), [str(c) for c in meta["columns"]]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(f"{path}: not an lpusim sweep.json (needs 'sweep' and 'columns'): {e}")
    columns = []
    for r in records:
        for c in r["params"]:
            if c not in columns:
                columns.append(c)
    return os.path.basename(os.path.normpath(sweep_dir)), columns


def slug(s):
    return re.sub(r"[^A-Za-z0-9_]+", "_", s).strip("_")


def series_names(records):
    """Display name of each record's (workload, precision): the workload's file name when those
    are unique, else the workload as written in the spec; the precision appended when given."""
    full = []
    for r in records:
        if r["workload"] not in full:
            full.append(r["workload"])
    short = {w: os.path.basename(w) if not w.startswith("gemm:") else w for w in full}
    if len(set(short.values())) != len(full):
        short = {w: w for w in full}

    def name(r):
        p = r["precision"]
        return short[r["workload"]] + (f" {p}" if p else "")

    return name


def numeric(values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def fmt_value(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fmt_params(params, fields):
    return ", ".join(f"{f}={fmt_value(params[f])}" for f in fields if f in params)


def setup_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise InputError(f"{sys.executable}: no matplotlib; install Debian's python3-matplotlib (scripts/install-deps.sh)")
    matplotlib.use("Agg")
    matplotlib.rcdefaults()  # ignore any user matplotlibrc: same input, same bytes on every machine
    matplotlib.rcParams.update({
        "svg.hashsalt": "lpusim-plot-sweep",  # deterministic element ids
        "svg.fonttype": "path",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "figure.dpi": 100,
        "savefig.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "path.simplify": False,
    })
    import matplotlib.pyplot as plt
    return plt


def save(plt, fig, out_dir, stem, written):
    for ext, meta in (("svg", {"Date": None, "Creator": "lpusim scripts/plot_sweep.py"}),
                      ("png", {"Software": "lpusim scripts/plot_sweep.py"})):
        path = os.path.join(out_dir, f"{stem}.{ext}")
        fig.savefig(path, format=ext, metadata=meta)
        written.append(path)
    plt.close(fig)


def ok_records(records):
    return [r for r in records if r["status"] == "ok"]


def check_metric(path, records, metric):
    present = []
    for r in records:
        for k in r["figures"]:
            if k not in present:
                present.append(k)
    if metric not in present:
        raise InputError(f"{path}: unknown metric '{metric}' (--y): no record has that figure; "
                         f"figures present: {', '.join(present) if present else '(none)'}")
    for r in records:
        v = r["figures"].get(metric)
        if v is not None and not numeric([v]):
            raise InputError(f"{path}: metric '{metric}' (--y) is not a number (record {r.get('index')}: {v!r})")


def x_of(r, field):
    """The x value of a record: a swept parameter, or a figure (in MiB for MIB_FIGURES)."""
    if field in r["params"]:
        return r["params"][field]
    v = r["figures"].get(field)
    if v is not None and field in MIB_FIGURES:
        return v / 2**20
    return v


def determined_by_x(records, name, field, column):
    """True when, per workload/precision, every x value of `field` (a figure) comes with one value of
    the swept `column` (e.g. SRAM per chip and memory.addresses_per_slice): such a column is not a
    series of its own when plotting against the figure."""
    seen = {}
    for r in records:
        key = (name(r), json.dumps(x_of(r, field)))
        v = json.dumps(r["params"].get(column))
        if seen.setdefault(key, v) != v:
            return False
    return True


def line_plot(plt, name, records, columns, field, metric, title, path):
    by_figure = field not in columns  # --x names a figure (checked by main)
    others = [c for c in columns if c != field and not (by_figure and determined_by_x(records, name, field, c))]
    series = {}  # label -> list of (x, y), in record order
    for r in records:
        if metric not in r["figures"] or x_of(r, field) is None:
            continue
        label = name(r)
        rest = fmt_params(r["params"], others)
        if rest:
            label += f" ({rest})"
        series.setdefault(label, []).append((x_of(r, field), r["figures"][metric]))
    if not series:
        raise InputError(f"{path}: no 'ok' record has both parameter '{field}' and metric '{metric}'")
    xs_all = [x for pts in series.values() for x, _ in pts]
    categorical = not numeric(xs_all)
    cats = []
    if categorical:
        for x in xs_all:
            if str(x) not in cats:
                cats.append(str(x))
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for label, pts in series.items():
        pts = [(cats.index(str(x)), y) for x, y in pts] if categorical else sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    if categorical:
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats)
    else:
        xs = sorted(set(xs_all))
        if xs[0] > 0 and xs[-1] / xs[0] >= LOG_SPAN:  # values spread over decades: log axis, ticks at the values
            ax.set_xscale("log")
            if len(xs) <= 12:
                ax.set_xticks(xs)
                ax.set_xticklabels([fmt_value(x) for x in xs])
                ax.minorticks_off()
    ax.set_xlabel(MIB_FIGURES.get(field, LABELS.get(field, field)) if by_figure else field)
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def ordered_values(records, field):
    vals = []
    for r in records:
        v = r["params"].get(field)
        if v is not None and v not in vals:
            vals.append(v)
    return sorted(vals) if numeric(vals) else vals


def panels(n):
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    return rows, cols


def heat_map(plt, name, records, columns, metric, title, path):
    """`records` are all records: cells whose point failed or timed out say so."""
    fx, fy = columns[0], columns[1]
    xs, ys = ordered_values(records, fx), ordered_values(records, fy)
    groups = {}
    for r in records:
        groups.setdefault(name(r), []).append(r)
    rows, cols = panels(len(groups))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for i, (label, recs) in enumerate(groups.items()):
        ax = axes[i // cols][i % cols]
        grid = [[float("nan")] * len(xs) for _ in ys]
        status = [[""] * len(xs) for _ in ys]
        for r in recs:
            if fx not in r["params"] or fy not in r["params"]:
                continue
            yi, xi = ys.index(r["params"][fy]), xs.index(r["params"][fx])
            v = r["figures"].get(metric)
            if r["status"] == "ok" and v is not None:
                grid[yi][xi] = v
            else:
                status[yi][xi] = r["status"]
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([fmt_value(x) for x in xs], rotation=30)
        ax.set_yticks(range(len(ys)))
        ax.set_yticklabels([fmt_value(y) for y in ys])
        ax.grid(False)
        for yi in range(len(ys)):
            for xi in range(len(xs)):
                v = grid[yi][xi]
                if v == v:  # not NaN; dark text on the light end of the colour map
                    ax.text(xi, yi, f"{v:.4g}", ha="center", va="center", fontsize=7,
                            color="black" if im.norm(v) > 0.6 else "white")
                elif status[yi][xi]:
                    ax.text(xi, yi, status[yi][xi], ha="center", va="center", fontsize=7, color="tab:red")
        ax.set_xlabel(fx)
        ax.set_ylabel(fy)
        ax.set_title(label, fontsize=9)
        fig.colorbar(im, ax=ax, label=LABELS.get(metric, metric))
    for j in range(len(groups), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pareto_front(points):
    """Indices of the points no other point beats on both latency and power (both minimized)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def latency_key(r):
    """The latency of a record for the Pareto front: latency_us, or an LLM's token latency."""
    f = r["figures"]
    return "latency_us" if "latency_us" in f else "token_latency_us"


def pareto_plot(plt, name, records, columns, title):
    groups = {}
    for r in records:
        f = r["figures"]
        if latency_key(r) in f and "power_w" in f:
            groups.setdefault(name(r), []).append(r)
    if not groups:
        return None
    rows, cols = panels(len(groups))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for i, (label, recs) in enumerate(groups.items()):
        ax = axes[i // cols][i % cols]
        pts = [(r["figures"][latency_key(r)], r["figures"]["power_w"]) for r in recs]
        front = pareto_front(pts)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="0.6", s=18, label="config points")
        ax.plot([pts[j][0] for j in front], [pts[j][1] for j in front], color="tab:red", marker="o",
                drawstyle="steps-post", label="Pareto front")
        if columns and len(front) <= MAX_FRONT_LABELS:  # label front points with their swept values
            lo, hi = min(p[0] for p in pts), max(p[0] for p in pts)
            for k, j in enumerate(front):
                text = ", ".join(fmt_value(recs[j]["params"][c]) for c in columns if c in recs[j]["params"])
                right = hi > lo and pts[j][0] > (lo + hi) / 2  # labels point inwards
                a = ax.annotate(text, pts[j], fontsize=6, xytext=(-4 if right else 4, 6 if k % 2 == 0 else -11),
                                textcoords="offset points", color="tab:red", ha="right" if right else "left")
                a.set_in_layout(False)
        ax.set_xlabel(LABELS[latency_key(recs[0])])
        ax.set_ylabel(LABELS["power_w"])
        ax.set_title(label, fontsize=9)
        leg = ax.legend(fontsize=7, loc="best")
        if columns and len(front) <= MAX_FRONT_LABELS:
            leg.set_title("front labels: " + ", ".join(columns), prop={"size": 7})
    for j in range(len(groups), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def main(argv):
    ap = argparse.ArgumentParser(description="Plot an lpusim sweep's results (PNG and SVG).")
    ap.add_argument("dir", metavar="DIR", help="sweep output directory (holds results.jsonl)")
    ap.add_argument("-o", dest="out", metavar="OUTDIR", help="where to write the images (default DIR/plots)")
    ap.add_argument("--x", dest="x", metavar="FIELD", help="plot against this swept field only (default: each)")
    ap.add_argument("--y", dest="y", metavar="METRIC", action="append",
                    help=f"figure to plot (repeatable; default {DEFAULT_METRIC})")
    a = ap.parse_args(argv)
    metrics = a.y or [DEFAULT_METRIC]

    path, records = read_records(a.dir)
    sweep, columns = read_meta(a.dir, records)
    good = ok_records(records)
    if not good:
        raise InputError(f"{path}: no point has status 'ok' ({len(records)} records), nothing to plot")
    if a.x is not None and a.x not in columns:
        try:  # a numeric figure (e.g. sram_per_chip_bytes) is an x axis too
            check_metric(path, good, a.x)
        except InputError:
            raise InputError(f"{path}: unknown field '{a.x}' (--x): not a swept parameter; swept: "
                             f"{', '.join(columns) if columns else '(none: the sweep has one config point)'}; "
                             f"nor a numeric figure of the records")
    for m in metrics:
        check_metric(path, good, m)
    plt = setup_matplotlib()
    out = a.out or os.path.join(a.dir, "plots")
    os.makedirs(out, exist_ok=True)
    name = series_names(records)
    written = []
    fields = [a.x] if a.x else columns
    skipped = len(records) - len(good)
    note = f"\n({skipped} of {len(records)} points failed or timed out: not shown)" if skipped else ""
    for m in metrics:
        for f in fields:
            fig = line_plot(plt, name, good, columns, f, m, f"{sweep}: {LABELS.get(m, m)} against {f}{note}", path)
            save(plt, fig, out, f"{slug(sweep)}-{slug(m)}-vs-{slug(f)}", written)
        if len(columns) == 2:
            fig = heat_map(plt, name, records, columns, m, f"{sweep}: {LABELS.get(m, m)}", path)
            save(plt, fig, out, f"{slug(sweep)}-{slug(m)}-heatmap", written)
    fig = pareto_plot(plt, name, good, columns, f"{sweep}: latency against power{note}")
    if fig is not None:
        save(plt, fig, out, f"{slug(sweep)}-pareto", written)
    if skipped:
        print(f"plot_sweep: {skipped} of {len(records)} points not 'ok' (failed or timed out), left out",
              file=sys.stderr)
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as e:
        print(f"plot_sweep: {e}", file=sys.stderr)
        sys.exit(2)
