"""`examples/run_ner.py`, paused in the middle of saving one checkpoint so that a test can SIGKILL it there.

Usage: python paused_run_ner.py PAUSE_STEP READY_FILE RUN_NER_ARGUMENTS...  (PAUSE_STEP 0: no pause)
At step PAUSE_STEP the model weights of `checkpoint-PAUSE_STEP` are on disk but its optimizer and trainer state
are not; the script then writes READY_FILE and sleeps until it is killed.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `tests.examples`

from modeling_manmoe.training import ManMoeTrainer  # noqa: E402
from tests.examples.test_run_ner import load_run_ner  # noqa: E402

pause_step, ready_file = int(sys.argv[1]), Path(sys.argv[2])
save_optimizer = ManMoeTrainer._save_optimizer_and_scheduler


def paused_save(self, output_dir):
    if self.state.global_step == pause_step:
        ready_file.write_text(output_dir)
        time.sleep(600)
    save_optimizer(self, output_dir)


ManMoeTrainer._save_optimizer_and_scheduler = paused_save
load_run_ner().main(sys.argv[3:])
