"""Hand-written CPU kernels behind `ManMoeConfig(kernels="fast")`: the same function as the plain torch modules of
the model (`kernels="torch"`), with fewer and cheaper operations on CPU.

- `lstm`: a multi-layer bidirectional LSTM with both directions in lockstep and a hand-written backward.
- `dropout`: inverted dropout with cheap random bits and a boolean mask saved for the backward pass.
- `char_windows`: the CharCNN's and the discriminator's max-pooled convolutions as table lookups / one product.
- `distinct_words`: prediction inputs computed once per distinct word of a batch.

Each module's tests compare it with the plain torch computation (`tests/test_kernels_*.py`).
"""

from . import char_windows, distinct_words, dropout, lstm

KERNELS_API = 1  # `kernel_switch.KERNELS_API`: the model's modules call these functions with these arguments

__all__ = ["KERNELS_API", "char_windows", "distinct_words", "dropout", "lstm"]
