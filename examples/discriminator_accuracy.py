#!/usr/bin/env python
"""Print a Markdown table of the discriminator's accuracy over training, from runs' `trainer_state.json` (written by
`run_ner.py`): one row per logging step, one column per run (D's accuracy on the adversarial batches, averaged
over the languages; chance = 1 / number of languages).

    python examples/discriminator_accuracy.py runs/adv-nl-lambda0 runs/adv-nl-lambda0.1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def accuracy_by_step(run: Path) -> tuple[dict[int, float], float]:
    """{step: mean D accuracy over languages} and the run's lambda, read from its output folder."""
    path = run / "trainer_state.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (a finished run_ner.py --do_train run writes it)")
    history = json.loads(path.read_text())["log_history"]
    results = json.loads((run / "all_results.json").read_text()) if (run / "all_results.json").is_file() else {}
    arguments, config = results.get("training_arguments", {}), results.get("config", {})
    lam = arguments.get("adversarial_lambda")
    lam = config.get("adversarial_lambda") if lam is None else lam
    table = {}
    for entry in history:
        values = [value for key, value in entry.items() if key.startswith("d_acc_")]
        if values:
            table[entry["step"]] = sum(values) / len(values)
    if not table:
        raise SystemExit(f"{path}: no d_acc_* entries (was the adversary on?)")
    return table, lam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run_ner.py output folders")
    options = parser.parse_args()
    columns = [(run, *accuracy_by_step(run)) for run in options.runs]
    print("| step | " + " | ".join(f"{run.name} (λ={lam})" for run, _, lam in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for step in sorted({step for _, table, _ in columns for step in table}):
        cells = [f"{table[step]:.3f}" if step in table else "" for _, table, _ in columns]
        print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
