#!/usr/bin/env python
"""Print a Markdown table of finished runs, read from their `all_results.json` files, so that published figures are
never typed by hand: test (and dev) F1 of `run_ner.py` runs, or test accuracy of `run_classification.py` runs.

    python examples/summarize_runs.py runs/ner-de runs/ner-es runs/ner-nl
    python examples/summarize_runs.py runs/cls-*-books runs/cls-*-dvd runs/cls-*-music
    python examples/summarize_runs.py runs/few-shot/*/      # zero_shot / joint / metaxl runs: a table by method

A run with teachers shows its distillation settings in the method column and is averaged apart. Runs with labeled
target sentences (`--target_train_size`, recorded as `target_train`) get the subset in the method column and a
second table: per target and method, the mean target test score over the subset seeds with its standard deviation
and range, the mean over targets, and the mean wall time per run; a third shows, from each run's training log, the
loss on the labeled target sentences and, for MetaXL, the size of the RTN and of the meta-gradient.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from modeling_manmoe.errors import DataFormatError
from modeling_manmoe.input_embeddings import describe_input as describe_input_component
from modeling_manmoe.run.results import RESULTS_FILE, describe_character_case, describe_variant, load_run_results


def describe_input(results: dict) -> str:
    """The input representation in a table's words (`describe_input(config, short=True)` of the input component),
    and its characters' case where it is not the reference's (`describe_character_case`)."""
    return describe_input_component(results["config"], short=True) + describe_character_case(results)


def load_results(run: Path) -> dict:
    """A finished run's `all_results.json` as `load_run_results` reads and checks it, with dev and test scores for
    its target (test only for a classification run); exits with the file and what is missing otherwise."""
    try:
        results = load_run_results(run)
    except DataFormatError as error:
        raise SystemExit(str(error)) from error
    target = results["target_language"]
    needed = ("test",) if results["task"] == "text-classification" else ("dev", "test")
    missing = [split for split in needed if target not in results.get(split, {})]
    if missing:
        raise SystemExit(f"{run / RESULTS_FILE}: no {' or '.join(missing)} scores for the target {target!r}")
    return results


def wall_time(results: dict) -> str:
    """The run's wall time in minutes; for a resumed run, the time since the resume, said so."""
    text = f"{results['wall_time_s'] / 60:.0f} min"
    step = results.get("train", {}).get("resumed_at_step")
    return f"{text} since the resume at step {step}" if step is not None else text


def best_step(results: dict) -> str:
    return (results.get("train", {}).get("best_checkpoint") or "").rsplit("-", 1)[-1] or "?"


def method_of(results: dict) -> str:
    """The run's transfer method: 'zero_shot' (the default, also for runs that record none), 'joint' or 'metaxl'."""
    return (results.get("target_train") or {}).get("transfer_method", "zero_shot")


def distillation_of(results: dict) -> str:
    """'' for a run without teachers; else its distillation settings and the teachers per source language, e.g.
    'distilled (α 0.0, β 3.0, T 1.0, 4 teachers per source)', with the target batches per step where above 1."""
    record = results.get("distillation") or {}
    teachers = record.get("teachers") or {}
    if not teachers:
        return ""
    sizes = sorted({len(entry.get("members") or [entry]) for entry in teachers.values()})
    per_source = "/".join(map(str, sizes)) + (" teacher" if sizes == [1] else " teachers") + " per source"
    batches = record.get("target_distillation_batches") or 1
    extra = f", {batches} target batches per step" if batches > 1 else ""
    return (f"distilled (α {record.get('distillation_alpha')}, β {record.get('target_distillation_weight')}, "
            f"T {record.get('distillation_temperature')}{extra}, {per_source})")  # fmt: skip


def transfer_method(results: dict) -> str:
    """'zero_shot', or 'joint' / 'metaxl' with the number of labeled target sentences and the subset seed; a run
    with teachers adds its distillation settings (`distillation_of`)."""
    method, few = method_of(results), results.get("target_train") or {}
    text = method if method == "zero_shot" else f"{method} N={few.get('size')} seed {few.get('subset_seed')}"
    return with_distillation(text, results)


def full_model(results: dict) -> str:
    """The key a zero-shot run of the full model is averaged under: its input, and its distillation if any."""
    return with_distillation(describe_input(results), results)


def with_distillation(text: str, results: dict) -> str:
    """`text`, followed by the run's distillation settings (`distillation_of`) for a run with teachers."""
    distillation = distillation_of(results)
    return f"{text}, {distillation}" if distillation else text


def target_score(results: dict) -> float:
    target = results["target_language"]
    split = results["test"][target]
    return split["f1"] if results.get("task", "token-classification") != "text-classification" else split["accuracy"]


def method_table(runs: list[dict]) -> None:
    """Per target and transfer method: the mean target test score over the runs (subset seeds), its standard
    deviation and range; then per method the mean over targets (of the per-target means) and the wall time."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for results in runs:
        groups.setdefault((method_of(results), results["target_language"]), []).append(results)
    methods = list(dict.fromkeys(method for method, _ in sorted(groups)))
    targets = sorted({target for _, target in groups})
    print("\n| method | " + " | ".join(targets) + " | mean over targets | wall time per run |")
    print("|---|" + "---|" * (len(targets) + 2))
    for method in methods:
        cells, means, times = [], [], []
        for target in targets:
            group = groups.get((method, target), [])
            scores = [target_score(results) for results in group]
            times += [results["wall_time_s"] / 60 for results in group]
            if not scores:
                cells.append("-")
                continue
            means.append(statistics.mean(scores))
            spread = (
                f" ± {statistics.stdev(scores):.1f} ({min(scores):.1f}–{max(scores):.1f})" if len(scores) > 1 else ""
            )
            cells.append(f"{means[-1]:.1f}{spread}, n={len(scores)}")
        mean = f"{statistics.mean(means):.1f}" if len(means) == len(targets) else "-"
        print(f"| {method} | " + " | ".join(cells) + f" | {mean} | {statistics.mean(times):.0f} min |")


def training_logs(run: Path) -> list[dict]:
    """The training log entries (those with a loss) of `run/trainer_state.json`; [] when the run has none."""
    path = run / "trainer_state.json"
    if not path.is_file():
        return []
    return [entry for entry in json.loads(path.read_text(encoding="utf-8")).get("log_history", []) if "loss" in entry]


def few_shot_diagnostics(paths: list[Path], runs: list[dict]) -> None:
    """Per joint / metaxl run, from its training log: the loss on the labeled target sentences (first and last log),
    and for metaxl the norm of the RTN's up-projection (it starts at 0: the identity) and of the meta-gradient."""
    print("\n| run | target loss, first → last log | RTN up-projection norm, first → last | meta-gradient norm, "
          "first → last |")  # fmt: skip
    print("|---|---|---|---|")
    for path, results in zip(paths, runs, strict=True):
        if not results.get("target_train"):
            continue
        logs = training_logs(path)
        print(f"| {path.name} | {_trend(logs, 'task_loss_' + results['target_language'], 3)} | "
              f"{_trend(logs, 'rtn_norm', 3)} | {_trend(logs, 'meta_grad_norm', 2)} |")  # fmt: skip


def _trend(logs: list[dict], key: str, digits: int) -> str:
    """'first → last' of the logged values of `key`, or '-'."""
    values = [entry[key] for entry in logs if key in entry]
    return f"{values[0]:.{digits}g} → {values[-1]:.{digits}g}" if values else "-"


def ner_table(runs: list[dict]) -> None:
    print(
        "| target | sources | input | model | method | steps | best step | target dev F1 | target test F1 (P / R) | "
        "wall time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    targets: dict[str, list[tuple[str, float]]] = {}
    for results in runs:
        target = results["target_language"]
        dev, test, train = results["dev"][target], results["test"][target], results.get("train", {})
        print(f"| {target} | {' '.join(results['source_languages'])} | {describe_input(results)} | "
              f"{describe_variant(results['config'])} | {transfer_method(results)} | "
              f"{train.get('global_step', '?')} | {best_step(results)} | {dev['f1']:.1f} | {test['f1']:.1f} "
              f"({test['precision']:.1f} / {test['recall']:.1f}) | {wall_time(results)} |")  # fmt: skip
        if describe_variant(results["config"]) == "MAN-MoE" and method_of(results) == "zero_shot":
            targets.setdefault(full_model(results), []).append((target, test["f1"]))
    for inputs, runs_of_input in targets.items():
        scores, distinct = [f1 for _, f1 in runs_of_input], len({target for target, _ in runs_of_input})
        over = f"{distinct} target(s)" if distinct == len(scores) else f"{len(scores)} runs of {distinct} target(s)"
        print(f"\nMean target test F1 of the full model ({inputs}) over {over}: {sum(scores) / len(scores):.1f}")


def classification_table(runs: list[dict]) -> None:
    print("| target | domain | sources | input | model | method | steps | best step | source dev acc. (mean) | "
          "target test acc. | source test acc. | wall time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    targets: dict[str, list[float]] = {}
    for results in runs:
        target, sources, train = results["target_language"], results["source_languages"], results.get("train", {})
        test = results["test"]
        source_test = " / ".join(f"{lang} {test[lang]['accuracy']:.1f}" for lang in sources if lang in test)
        print(f"| {target} | {results.get('domain') or '-'} | {' '.join(sources)} | "
              f"{describe_input(results)} | {describe_variant(results['config'])} | {transfer_method(results)} | "
              f"{train.get('global_step', '?')} "
              f"| {best_step(results)} | {train.get('best_selection_score') or float('nan'):.1f} | "
              f"{test[target]['accuracy']:.1f} | {source_test} | {wall_time(results)} |")  # fmt: skip
        if describe_variant(results["config"]) == "MAN-MoE" and method_of(results) == "zero_shot":
            targets.setdefault(full_model(results), []).append(test[target]["accuracy"])
    for inputs, scores in targets.items():
        print(f"\nTarget test accuracy of the full model ({inputs}) over {len(scores)} run(s): mean "
              f"{sum(scores) / len(scores):.1f}, lowest {min(scores):.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run output folders holding all_results.json")
    options = parser.parse_args()
    runs = [load_results(run) for run in options.runs]
    tasks = {results.get("task", "token-classification") for results in runs}
    if len(tasks) > 1:
        raise SystemExit(f"the runs are of different tasks {sorted(tasks)}: summarize them separately")
    (classification_table if tasks == {"text-classification"} else ner_table)(runs)
    if any(method_of(results) != "zero_shot" for results in runs):
        method_table(runs)
        few_shot_diagnostics(options.runs, runs)


if __name__ == "__main__":
    main()
