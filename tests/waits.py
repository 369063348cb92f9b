"""How long a test waits for real work (a child process, a model load, a training step, a
CLI run) before it calls it hung.

Not a guess at how long the work takes: on a quiet machine it takes seconds, on two cores
shared with other busy processes many times that, and a wait sized for the quiet machine
failed there (docs/testing.md). A hang still fails, after this long, instead of blocking the
suite. Waits that only let the GUI thread handle what already happened stay short.
"""

WORK_TIMEOUT_S = 600
WORK_TIMEOUT_MS = WORK_TIMEOUT_S * 1000
