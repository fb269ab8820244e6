"""What runs where the model runs: the table of formats and runtimes, the runtime adapters, the runner that
measures an artifact, the result-record schema and model-card reading.

The lowest layer beside `data` and `models`: it imports neither TensorFlow nor the training, export or bench
code, so `export` and `bench` both build on it without importing each other. The runner and the modules it
needs (RUNNER_FILES) are copied to devices (SSH, emulated CPUs) as they are: they import only numpy, the
runtimes and each other.
"""

from pathlib import Path

RUNNER_FILES = tuple(Path(__file__).with_name(name)
                     for name in ("runner.py", "runtimes.py", "formats.py", "records.py", "profiles.py",
                                                 "host.py", "files.py"))
RUNNER = RUNNER_FILES[0]
