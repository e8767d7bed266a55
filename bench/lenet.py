"""LeNet-5 trained here: how long training takes on this CPU, its held-out
accuracy, and how photos of the held-out digits fare through the digit
preparation (models/digits.py).

Trains ``--repeats`` times from scratch (the weights are identical each time:
seeded, one thread) and quotes the median wall and CPU time (the machine
may be shared: the CPU time of the one training thread is what it takes on
an idle core); the photos are the test
suite's (tests/conftest.py: digit_photo), dark on light and light on dark in
turn.

    PYTHONPATH=$PWD python bench/lenet.py [--repeats 3] [--photos 450]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "lenet.json"
sys.path.insert(0, str(ROOT / "tests"))

from conftest import digit_photo  # noqa: E402

from models.classic import LeNet5  # noqa: E402
from models.digits import DigitPreprocessing  # noqa: E402
from models.lenet_training import RECIPE, train_lenet5  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", type=int, default=450)
    args = parser.parse_args()

    runs, cpu_seconds = [], []
    for _ in range(args.repeats):
        started = time.process_time()  # one thread trains: CPU time is what an idle core would take
        runs.append(train_lenet5())
        cpu_seconds.append(time.process_time() - started)
    trained = runs[0]
    identical = all(torch.equal(run.state_dict[k], trained.state_dict[k]) for run in runs for k in trained.state_dict)
    model = LeNet5()
    model.load_state_dict(trained.state_dict)
    model.eval()

    from sklearn.model_selection import train_test_split

    from models.digits import load_digit_data

    images, labels = load_digit_data()
    _, x_test, _, y_test = train_test_split(images, labels, test_size=RECIPE["held_out"],
                                            random_state=RECIPE["split_seed"], stratify=labels)
    prepare = DigitPreprocessing()
    right, prepare_ms = 0, []
    for i, (digit, label) in enumerate(list(zip(x_test, y_test))[:args.photos]):
        photo = Image.open(io.BytesIO(digit_photo(digit, dark_on_light=i % 2 == 0, seed=i))).convert("RGB")
        started = time.perf_counter()
        x = prepare(photo)
        prepare_ms.append((time.perf_counter() - started) * 1000)
        with torch.inference_mode():
            right += int(model(x[None]).argmax().item() == label)

    result = {
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "recipe": RECIPE, "repeats": args.repeats,
        "train_seconds_median": statistics.median(run.train_seconds for run in runs),
        "train_seconds": [run.train_seconds for run in runs],
        "train_cpu_seconds_median": statistics.median(cpu_seconds),
        "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count(),
        "identical_weights": identical,
        "train_images": trained.train_images, "held_out_images": trained.held_out_images,
        "held_out_accuracy": trained.held_out_accuracy,
        "photos": args.photos, "photo_accuracy": 100 * right / args.photos,
        "prepare_ms_median": statistics.median(prepare_ms),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| LeNet-5 on scikit-learn's digits | value |\n|---|---:|")
    print(f"| training, median of {args.repeats}: wall (s) / CPU (s) | {result['train_seconds_median']:.1f} / "
          f"{result['train_cpu_seconds_median']:.1f} |")
    print(f"| load average during the run / CPUs | {result['load_average_1min']:.1f} / {result['cpus']} |")
    print(f"| same weights every run | {identical} |")
    print(f"| held-out top-1 ({trained.held_out_images} digits) | {trained.held_out_accuracy:.2f}% |")
    print(f"| top-1 on {args.photos} JPEG photos of the held-out digits | {result['photo_accuracy']:.2f}% |")
    print(f"| digit preparation of a 480x360 photo, median (ms) | {result['prepare_ms_median']:.1f} |")


if __name__ == "__main__":
    main()
