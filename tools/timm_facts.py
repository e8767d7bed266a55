"""Make models/data/timm_zoo.csv and models/data/timm_benchmark.csv from the
installed timm and timm's published tables.

    python tools/timm_facts.py [--tables ../shared/data/timm]

Sources (see the tables' SOURCE.md): timm's registry (model module = family,
pretrained tags, default input size, arXiv ids -> year) and "timm results
tables, pytorch-image-models commit aa4b585": results-imagenet.csv (top-1/top-5
of every pretrained tag at the resolution it was evaluated at),
model_metadata-in1k.csv (pre-training data), and
benchmark-infer-amp-nchw-pt291-cu128-4090.csv (params and fvcore GMACs, copied
as they are for bench/timm_exactness.py and the tests).

The best tag is the one with the highest top-1 in results-imagenet.csv. Its
pre-training data is read from the tag as timm names it (the dataset before
``_ft_``: ``augreg2_in21k_ft_in1k`` -> in21k; no ``_ft_``: the last word,
``a1_in1k`` -> in1k); model_metadata-in1k.csv answers for archs whose best tag
names none. A tag whose pre-training is a method (``fcmae_ft_in22k_in1k``) gets
the first dataset it was fine-tuned on (in22k).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.timm_zoo import (BENCHMARK_CSV, FACT_COLUMNS, FACTS_CSV, facts_to_row,  # noqa: E402
                             live_facts)

DATASET_WORDS = ("in1k", "in12k", "in21k", "in22k", "ig1b", "ig3b", "yfcc100m", "jft300m", "laion2b", "laion400m",
                 "m38m", "m30m", "merged2b", "openai", "dfn2b", "dfn5b", "webli", "dc1b", "metaclip", "lvd142m", "ig",
                 "yfcc15m", "cc12m", "datacompxl", "sbb", "mim")


def pretrain_of(tag: str, metadata: dict[str, str], arch: str) -> str | None:
    before, _, after = tag.partition("_ft_")
    found = next((w for w in reversed(before.split("_")) if w.startswith(DATASET_WORDS)), None)
    # A method before _ft_ (fcmae_ft_in22k_in1k): the first dataset it was fine-tuned on.
    found = found or next((w for w in after.split("_") if w.startswith(DATASET_WORDS)), None)
    return found or metadata.get(arch)


def main() -> int:
    import timm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # ../shared/data/timm beside the repository (or beside the folder of worktrees)
    default = next((p / "shared" / "data" / "timm" for p in ROOT.parents if (p / "shared" / "data" / "timm").is_dir()),
                   None)
    parser.add_argument("--tables", type=Path, default=default, required=default is None)
    args = parser.parse_args()

    with open(args.tables / "model_metadata-in1k.csv", newline="") as f:
        metadata = {row["model"]: row["pretrain"] for row in csv.DictReader(f)}
    best: dict[str, dict[str, str]] = {}
    with open(args.tables / "results-imagenet.csv", newline="") as f:
        for row in csv.DictReader(f):
            arch = row["model"].partition(".")[0]
            if arch not in best or float(row["top1"]) > float(best[arch]["top1"]):
                best[arch] = row

    rows = []
    for arch in timm.list_models():
        facts = live_facts(arch)
        result = best.get(arch)
        if result is not None:
            tag = result["model"].partition(".")[2]
            facts = replace(facts, best_tag=tag, top1=float(result["top1"]), top5=float(result["top5"]),
                            top1_resolution=int(result["img_size"]), pretrain=pretrain_of(tag, metadata, arch))
        rows.append(facts_to_row(facts))
    with open(FACTS_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, FACT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    columns = ("model", "infer_img_size", "param_count", "infer_gmacs")
    with open(args.tables / "benchmark-infer-amp-nchw-pt291-cu128-4090.csv", newline="") as f:
        bench = [{c: row[c] for c in columns} for row in csv.DictReader(f)]
    with open(BENCHMARK_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(bench)
    with_accuracy = sum(1 for r in rows if r["top1"])
    print(f"{len(rows)} archs ({with_accuracy} with ImageNet-1k accuracy) -> {FACTS_CSV.relative_to(ROOT)}; "
          f"{len(bench)} benchmark rows -> {BENCHMARK_CSV.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
