"""docs/embedding.md's Python snippet runs as written and reads its drawn "L" with both runtimes."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_embedding_guide_python_snippet_runs():
    text = (ROOT / "docs" / "embedding.md").read_text()
    block = re.search(r"<!-- embedding-python: begin -->\s*```python\n(.*?)```\s*<!-- embedding-python: end -->",
                      text, re.S)
    assert block, "the guide lost its marked Python snippet"
    done = subprocess.run([sys.executable, "-c", block.group(1)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert lines["LiteRT"].split()[0] == "L" and lines["ONNX Runtime"].split()[0] == "L", done.stdout
