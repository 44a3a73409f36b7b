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


def describe_input(config: dict) -> str:
    """The input representation: word vectors or the frozen encoder (its folder or Hub name, layers), +CharCNN."""
    if config.get("input_mode") == "encoder":
        name = Path(config.get("encoder_name_or_path") or "encoder").name
        layers = config.get("encoder_layers", [-1])
        text = f"{name} layer{'s' if len(layers) > 1 else ''} {' '.join(map(str, layers))}"
    else:
        text = "word vectors"
    return text + (" + CharCNN" if config.get("use_char_cnn", True) else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run output folders holding all_results.json")
    options = parser.parse_args()
    print(
        "| target | sources | input | model | steps | best step | target dev F1 | target test F1 (P / R) | wall time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    targets: dict[str, list[float]] = {}
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
        print(f"| {target} | {' '.join(results['source_languages'])} | {describe_input(results['config'])} | "
              f"{describe(results['config'])} | "
              f"{train.get('global_step', '?')} | {best} | {dev['f1']:.1f} | {test['f1']:.1f} "
              f"({test['precision']:.1f} / {test['recall']:.1f}) | {results['wall_time_s'] / 60:.0f} min |")  # fmt: skip
        if describe(results["config"]) == "MAN-MoE":
            targets.setdefault(describe_input(results["config"]), []).append(test["f1"])
    for inputs, scores in targets.items():
        print(f"\nMean target test F1 of the full model ({inputs}) over {len(scores)} target(s): "
              f"{sum(scores) / len(scores):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
