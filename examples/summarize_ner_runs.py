#!/usr/bin/env python
"""Print a Markdown table of the test (and dev) F1 of finished `run_ner.py` runs, read from their
`all_results.json` files, so that published figures are never typed by hand.

    python examples/summarize_ner_runs.py runs/ner-de runs/ner-es runs/ner-nl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def describe(config: dict) -> str:
    """The model variant: full MAN-MoE or the ablation(s) its config names."""
    off = [name for flag, name in (("use_adversary", "no adversary"), ("use_private_moe", "no private MoE"),
                                   ("use_predictor_moe", "no predictor MoE")) if not config.get(flag, True)]  # fmt: skip
    return ", ".join(off) if off else "MAN-MoE"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run output folders holding all_results.json")
    options = parser.parse_args()
    print("| target | sources | model | steps | best step | target dev F1 | target test F1 (P / R) | wall time |")
    print("|---|---|---|---|---|---|---|---|")
    targets = []
    for run in options.runs:
        path = run / "all_results.json"
        if not path.is_file():
            raise SystemExit(f"{path}: not found (is the run finished?)")
        results = json.loads(path.read_text(encoding="utf-8"))
        target = results["target_language"]
        missing = [split for split in ("dev", "test") if target not in results.get(split, {})]
        if missing:
            raise SystemExit(f"{path}: no {' or '.join(missing)} scores for the target {target!r}")
        dev, test, train = results["dev"][target], results["test"][target], results.get("train", {})
        best = (train.get("best_checkpoint") or "").rsplit("-", 1)[-1] or "?"
        print(f"| {target} | {' '.join(results['source_languages'])} | {describe(results['config'])} | "
              f"{train.get('global_step', '?')} | {best} | {dev['f1']:.1f} | {test['f1']:.1f} "
              f"({test['precision']:.1f} / {test['recall']:.1f}) | {results['wall_time_s'] / 60:.0f} min |")  # fmt: skip
        if describe(results["config"]) == "MAN-MoE":
            targets.append(test["f1"])
    if targets:
        print(
            f"\nMean target test F1 of the full model over {len(targets)} target(s): {sum(targets) / len(targets):.1f}"
        )


if __name__ == "__main__":
    main()
