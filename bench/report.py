"""Markdown tables of the last benchmark results (bench/results/*.json), for
README.md's Performance section: the figures are pasted from here, never typed.

    .venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def analysis() -> str:
    data = json.loads((RESULTS / "analysis.json").read_text())
    rows = [[r["model"], f"{r['cold_ms']:.1f}", f"{r['trace_ms']:.1f}", f"{r['disk_cached_ms']:.2f}",
             f"{r['torchinfo_ms']:.1f}", f"{r['cold_vs_torchinfo']:.2f}",
             f"{r['real_build_ms'] + r['torchinfo_ms']:.1f}", f"{r['cold_vs_build_and_torchinfo']:.2f}", f"{r['params']:,}",
             f"{r['meta_params']:,}", f"{r['macs'] / 1e9:.3f}", f"{r['meta_gmacs']:.3f}",
             f"{r['torchinfo_macs'] / 1e9:.3f}"] for r in data["rows"]]
    return table(["model", "cold ms", "trace ms", "cached ms (disk)", "torchinfo ms", "cold / torchinfo",
                  "build + torchinfo ms", "cold / (build + torchinfo)",
                  "params", "torchvision params", "GMACs", "torchvision GMACs", "torchinfo GMACs"], rows) + (
        f"\n\nMedians of {data['repeats']} runs; torch {data['machine']['torch']}, "
        f"{data['machine']['threads']} threads"
        + (f"; load average {data['load_average']['start']:.1f} at the start, {data['load_average']['end']:.1f} "
           "at the end." if "load_average" in data else "."))


def predict() -> str:
    """This code and the code before concurrent runs (predict-before-concurrent-runs.json: commit c5af5b0's
    server measured by this bench, back to back with it)."""
    runs = [json.loads((RESULTS / name).read_text())
            for name in ("predict-before-concurrent-runs.json", "predict.json")]

    def row(label: str, cell) -> list[str]:
        return [label] + [cell(run["summary"]) for run in runs]

    def clients(key: str, unit: str, digits: int = 1) -> Callable[[dict], str]:
        return lambda s: " / ".join(f"{s[key][k]:.{digits}f}" for k in ("1", "4", "8")) + f" {unit}"

    rows = [
        row("in-process decode + preprocess + forward, p50 / p95",
            lambda s: f"{s['in_process_p50_ms']:.2f} / {s['in_process_p95_ms']:.2f} ms"),
        row("HTTP POST /api/predict, p50 / p95 (raw client)",
            lambda s: f"{s['raw_http_p50_ms']:.2f} / {s['raw_http_p95_ms']:.2f} ms"),
        row("HTTP p50, httpx client", lambda s: f"{s['httpx_http_p50_ms']:.2f} ms"),
        row("HTTP p50 / in-process p50, raw client (goal <= 1.3)", lambda s: f"{s['raw_http_over_in_process_p50']:.2f}"),
        row("HTTP p50 / in-process p50, httpx", lambda s: f"{s['httpx_http_over_in_process_p50']:.2f}"),
        row("raw forward: batch 1 / batch 8, one caller; batch 1, two callers",
            lambda s: f"{s['forward_batch1_img_s']:.0f} / {s['forward_batch8_img_s']:.0f}; "
                      f"{s['forward_batch1_two_callers_img_s']:.0f} img/s"),
        row("HTTP throughput, 1 / 4 / 8 raw clients", clients("throughput_img_s", "img/s")),
        row("HTTP throughput, 8 httpx clients", lambda s: f"{s['httpx_throughput_8_clients_img_s']:.1f} img/s"),
        row("HTTP p50 latency, 1 / 4 / 8 clients", clients("latency_p50_ms_under_load", "ms")),
        row("server CPU per image, 1 / 4 / 8 clients", clients("server_cpu_ms_per_img", "ms", 2)),
        row("client CPU per image, 8 raw / 8 httpx clients",
            lambda s: " / ".join(f"{v:.2f}" for v in s["client_cpu_ms_per_img"].values()) + " ms"),
        row("8 raw clients served / raw batch-8 forward (goal >= 0.8)", lambda s: f"{s['served_8_over_raw_batch8']:.2f}"),
        row("8 raw clients served / two callers' batch-1 forward", lambda s: f"{s['served_8_over_two_callers']:.2f}"),
        row("8 httpx clients served / raw batch-8 forward", lambda s: f"{s['httpx_served_8_over_raw_batch8']:.2f}"),
        ["load average, start - end"] + [f"{run['load_average']['start']:.1f} - {run['load_average']['end']:.1f}"
                                         for run in runs],
    ]
    return table([f"EfficientNet-Lite0 on the CPU, {runs[-1]['runtime']} (medians of rounds)",
                  "before (c5af5b0)", "this code"], rows)


def speed_runtimes() -> str:
    data = json.loads((RESULTS / "speed_runtimes.json").read_text())
    labels = list(data["rows"][0]["runtimes"])

    def img_s(result: dict, batch: int) -> str:
        found = [b["images_per_s"] for b in result["batches"] if b["batch_size"] == batch]
        return f"{found[0]:.1f}" if found else "-"

    rows = [[row["model"], *(f"{img_s(row['runtimes'][label], 1)} / {img_s(row['runtimes'][label], 8)}"
                             for label in labels)] for row in data["rows"]]
    return table(["model (img/s, batch 1 / batch 8)", *labels], rows) + (
        f"\n\nfloat32, {data['threads']} threads, torch {data['torch']}; the speed runner's medians (one run).")


def load(name: str = "load.json") -> str:
    data = json.loads((RESULTS / name).read_text())
    parts = []
    for number, r in enumerate(data["rounds"], 1):
        rss = r["rss_bytes"]
        parts.append(f"Round {number}, {data.get('workers', 1)} worker(s): {r['requests']} requests in "
                     f"{r['seconds']:.0f} s from {data['clients']} clients; server RSS (all its processes) "
                     f"{rss['start'] / 1e6:.0f} MB at start, {rss['peak'] / 1e6:.0f} MB peak, "
                     f"{rss['end'] / 1e6:.0f} MB at end.")
        rows = [[label, str(e["requests"]), f"{e['p50_ms']:.0f}", f"{e['p95_ms']:.0f}", f"{e['p99_ms']:.0f}",
                 ", ".join(f"{code}: {n}" for code, n in sorted(e["statuses"].items())), str(e["errors"])]
                for label, e in r["endpoints"].items()]
        parts.append(table(["endpoint", "requests", "p50 ms", "p95 ms", "p99 ms", "statuses", "errors"], rows))
    return "\n\n".join(parts)


# Runs of bench/load.py side by side: (file, what the server was).
SCALE_RUNS = [
    ("load-before-queueing-fixes.json", "before: 1 worker"),
    ("load-1-worker-first-fixes.json", "first fixes: 1 worker"),
    ("load-2-workers-first-fixes.json", "first fixes: 2 workers"),
    ("load-1-worker-then.json", "then: 1 worker"),
    ("load-2-workers-then.json", "then: 2 workers"),
    ("load-1-worker-model-page.json", "model page fixes: 1 worker"),
    ("load-1-worker-model-page-compare.json", "and compare's picker: 1 worker"),
    ("load.json", "GC tuned: 1 worker"),
    ("load-2-workers.json", "GC tuned: 2 workers"),
]


def load_scale() -> str:
    runs = [(json.loads((RESULTS / name).read_text()), label) for name, label in SCALE_RUNS
            if (RESULTS / name).exists()]
    endpoints = sorted({e for data, _ in runs for e in data["rounds"][0]["endpoints"]})
    header = ["endpoint"] + [f"{label}: p50 / p95 / p99 ms" for _, label in runs]

    def cell(found: dict | None) -> str:
        return f"{found['p50_ms']:.0f} / {found['p95_ms']:.0f} / {found['p99_ms']:.0f}" if found else "-"

    rows = [[e] + [cell(data["rounds"][0]["endpoints"].get(e)) for data, _ in runs] for e in endpoints]
    rounds = [data["rounds"][0] for data, _ in runs]
    rows.append(["requests in the round"] + [f"{r['requests']} in {r['seconds']:.0f} s" for r in rounds])
    rows.append(["errors (no answer, or a 5xx but 503)"] + [
        str(sum(x["errors"] for x in r["endpoints"].values())) for r in rounds])
    rows.append(["503 busy (intended refusals)"] + [
        str(sum(x["busy_503"] for x in r["endpoints"].values())) for r in rounds])
    rows.append(["server RSS start / peak / end MB"] + [
        " / ".join(f"{r['rss_bytes'][k] / 1e6:.0f}" for k in ("start", "peak", "end")) for r in rounds])
    rows.append(["load average (1 min) at start / end"] + [
        " / ".join(f"{r['load_average_1min'][k]:.1f}" for k in ("start", "end")) if "load_average_1min" in r else "-"
        for r in rounds])
    return table(header, rows)


def warmup() -> str:
    data = json.loads((RESULTS / "warmup.json").read_text())
    names = ("first start", "restart (resumes)")
    def first_pass(r: dict) -> str:
        return "-" if r.get("first_pass_s") is None else f"{r['first_pass_s']:.1f}"

    def load_average(r: dict) -> str:
        return "-" if "load_average" not in r else f"{r['load_average']['start']:.1f} - {r['load_average']['end']:.1f}"

    rows = [[name, f"{r['server_ready_s']:.1f}", first_pass(r), f"{r['warmup']['seconds']:.1f}",
             str(r["warmup"]["analysed_now"]), f"{r['warmup']['done']} / {r['warmup']['total']}",
             str(len(r["warmup"]["failed"])), f"{r['peak_rss_bytes'] / 1e6:.0f}", load_average(r)]
            for name, r in zip(names, data["runs"])]
    parts = [table(["run", "server ready s", "every model analysed s", "warm-up s (with top-1 sides)",
                    "analysed by this run", "done", "failed", "peak RSS MB", "load average"], rows)]
    if "every_model_cold_s" in data:
        stopped = (f"first start stopped {data['interrupt_after_s']:.0f} s in, the restart resuming"
                   if data["interrupt_after_s"] else "one start")
        parts.append(f"The whole catalog analysed cold in {data['every_model_cold_s']:.0f} s of warm-up "
                     f"({stopped}), {data['cpus']} CPUs.")
    for name, r in zip(names, data["runs"]):
        rows = [[label, str(e["requests"]), f"{e['p50_ms']:.0f}", f"{e['p95_ms']:.0f}", f"{e['p99_ms']:.0f}",
                 str(e["errors"])] for label, e in r["pages"].items()]
        parts.append(f"Pages while the warm-up runs ({name}, {data['clients']} clients, "
                     f"{data['workers']} worker(s)):\n\n"
                     + table(["page", "requests", "p50 ms", "p95 ms", "p99 ms", "errors"], rows))
    return "\n\n".join(parts)


def inside() -> str:
    data = json.loads((RESULTS / "inside.json").read_text())
    s = data["summary"]
    threads = data["torch_threads"]

    def row(label: str, wall: float, cpu: float) -> list[str]:
        return [label, f"{wall:.0f} ms", f"{cpu:.0f} ms", f"{cpu / threads:.0f} ms"]

    rows = [
        [f"feature maps, median over the {s['layers']} layers", f"{s['feature_maps_median_ms']:.0f} ms", "", ""],
        [f"feature maps, slowest layer by wall time ({s['feature_maps_worst_layer']})",
         f"{s['feature_maps_worst_ms']:.0f} ms", "", ""],
        row(f"feature maps, most CPU of any layer ({s['feature_maps_most_cpu_layer']}; goal < 300 ms)",
            next(r["median_ms"] for r in data["feature_maps"] if r["layer"] == s["feature_maps_most_cpu_layer"]),
            s["feature_maps_most_cpu_ms"]),
        row("Grad-CAM (goal < 1 s)", s["gradcam_ms"], s["gradcam_cpu_ms"]),
        row("occlusion, 13 x 13 grey squares (goal < 10 s)", s["occlusion_ms"], s["occlusion_cpu_ms"]),
        row("guided backpropagation", s["guided_backprop_ms"], s["guided_backprop_cpu_ms"]),
        row("DeconvNet", s["deconvnet_ms"], s["deconvnet_cpu_ms"]),
    ]
    return table(["EfficientNet-Lite0 over HTTP (in-process client), coffee.png", "wall, median", "CPU, median",
                  f"CPU / {threads} threads"], rows) + (
        f"\n\nMedians of {data['repeats']} requests per layer, 5 per method (occlusion 3); torch {data['torch']}, "
        f"{threads} threads, measured at a load average of {data['load_average'][0]:.0f} on {data['cpus']} cores "
        f"(other sessions): wall time includes waiting for a core; on idle cores the wall time lies between "
        f"CPU / threads (all of it parallel) and CPU (none of it).")


def lenet() -> str:
    r = json.loads((RESULTS / "lenet.json").read_text())
    rows = [
        [f"training, median of {r['repeats']}: wall / CPU of its one thread",
         f"{r['train_seconds_median']:.1f} s / {r['train_cpu_seconds_median']:.1f} s"],
        ["same weights every run", "yes" if r["identical_weights"] else "no"],
        [f"held-out top-1 ({r['held_out_images']} digits)", f"{r['held_out_accuracy']:.2f}%"],
        [f"top-1 on {r['photos']} JPEG photos of the held-out digits (tests' `digit_photo`)",
         f"{r['photo_accuracy']:.2f}%"],
        ["digit preparation of a 480x360 photo, median", f"{r['prepare_ms_median']:.1f} ms"],
    ]
    return (table(["LeNet-5 on scikit-learn's digits", "value"], rows)
            + f"\n\nMeasured at a load average of {r['load_average_1min']:.0f} on the {r['cpus']} cores (other "
              f"sessions): the training's CPU time, {r['train_cpu_seconds_median']:.1f} s, is what it takes on an "
              f"idle core.")


def graph() -> str:
    data = json.loads((RESULTS / "graph.json").read_text())
    trace = table(["model", "graph nodes", "trace CPU ms", "without the graph", "overhead"], [
        [r["model"], str(r["nodes"]), f"{r['trace_cpu_ms']:.1f}", f"{r['trace_cpu_ms_without_graph']:.1f}",
         f"{100 * r['overhead']:.1f}%"] for r in data["trace"]])
    opened = table(["model", "opens at depth", "nodes", "edges", "graph JSON ms", "Graphviz SVG ms",
                    "graph shown ms (browser)", "page ready ms (browser)"], [
        [r["model"], str(r["depth"]), str(r["nodes"]), str(r["edges"]), f"{r['json_ms']:.0f}", f"{r['svg_ms']:.0f}",
         f"{r['render_ms']:.0f}", f"{r['page_ready_ms']:.0f}"] for r in data["open_folded"]])
    return (f"{trace}\n\n{opened}\n\nMedians of {data['repeats']} runs. Graph shown: from the page's request for the "
            "graph to the laid-out, coloured SVG in the page; page ready: from navigation start to that moment "
            "(analyses cached).")


def gc_pauses() -> str:
    data = json.loads((RESULTS / "gc_pauses.json").read_text())
    names = {"default": "CPython's defaults (700, 10, 10)", "tuned": "start-up frozen, (5000, 10, 100)"}
    rows = [[names[setting], f"{r['wall_s']:.1f}", f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}", f"{r['p99_ms']:.0f}",
             f"{r['max_ms']:.0f}", f"{r['collections']:.0f}", f"{r['full_collections']:.0f}", f"{r['gc_s']:.1f}",
             f"{r['longest_pause_ms']:.0f}"] for setting, r in data["summary"].items()]
    views = data["summary"]["default"]["views"]
    return table(["garbage collection", "wall s", "p50 ms", "p95 ms", "p99 ms", "max ms", "collections",
                  "full collections", "time in GC s", "longest pause ms"], rows) + (
        f"\n\n{views:.0f} page views per run ({len(data['models'])} random catalog models' pages, "
        f"{data['passes']} times each, and / every third view of the first pass), medians of {data['repeats']} "
        f"runs per setting in fresh processes, alternating; load average {data['load_average'][0]:.1f} - "
        f"{data['load_average'][1]:.1f}.")


if __name__ == "__main__":
    for title, render in (("bench/analysis.py", analysis), ("bench/predict.py", predict),
                          ("bench/speed_runtimes.py", speed_runtimes), ("bench/lenet.py", lenet),
                          ("bench/load.py", load), ("bench/load.py --workers 1 / 2", load_scale),
                          ("bench/warmup.py", warmup), ("bench/gc_pauses.py", gc_pauses), ("bench/graph.py", graph),
                          ("bench/inside.py", inside)):
        print(f"### {title}\n\n{render()}\n")
