"""MLflow tracking of runs (`--mlflow [URI]`): parameters, metrics per epoch, learning curves, exported artifacts.

A run folder remembers its MLflow run (mlflow.json), so a resumed training, a later export or a search trial's
latency lands in the same MLflow run. URI: a folder (default `mlruns`: a local SQLite database and an artifacts
folder in it, no server) or a tracking server / database URL for a team (http://host:5000, postgresql://...).
MLflow 3 refuses its plain-file store unless told otherwise (it is in maintenance mode), so the local default
is its SQLite store, still one folder beside your runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge_emnist.errors import EdgeEmnistError

DEFAULT = "mlruns"
EXPERIMENT = "edge-emnist"
RUN_FILE = "mlflow.json"  # in the run folder: which MLflow run (and where) it is


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise EdgeEmnistError("--mlflow needs MLflow: pip install 'edge-emnist[mlflow]'") from None
    # an unreachable server is one line within seconds, not minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return mlflow


def resolve(setting: str) -> tuple[str, str | None]:
    """(tracking URI, artifact root or None): a folder becomes its own SQLite store with an artifacts folder."""
    if "://" in setting:
        return setting, None
    folder = Path(setting).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts")


class Tracker:
    """One MLflow run for one run folder: started, or resumed from the folder's mlflow.json."""

    def __init__(self, setting: str, run_dir: Path, *, name: str | None = None) -> None:
        self.mlflow = _mlflow()
        self.uri, artifacts = resolve(setting)
        self.run_dir = run_dir
        try:
            self.mlflow.set_tracking_uri(self.uri)
            experiment = self.mlflow.get_experiment_by_name(EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment else
                             self.mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts))
            known = self._known_run()
            self.run = self.mlflow.start_run(run_id=known, experiment_id=None if known else experiment_id,
                                             run_name=None if known else (name or run_dir.name))
        except Exception as error:  # MLflow raises many kinds (HTTP, SQL, its own): the user needs one line
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise EdgeEmnistError(f"cannot track in MLflow at {self.uri}: {reason}") from None
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_FILE).write_text(json.dumps({"tracking_uri": self.uri, "run_id": self.run.info.run_id}) + "\n")

    def _known_run(self) -> str | None:
        path = self.run_dir / RUN_FILE
        if not path.exists():
            return None
        known = json.loads(path.read_text())
        return known["run_id"] if known.get("tracking_uri") == self.uri else None

    def params(self, values: dict) -> None:
        flat = {key: json.dumps(value) if isinstance(value, (dict, list, tuple)) else value
                for key, value in values.items()}
        existing = self.mlflow.get_run(self.run.info.run_id).data.params
        self.mlflow.log_params({k: v for k, v in flat.items() if k not in existing})  # a resume logs none twice

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in values.items() if isinstance(v, (int, float))}, step=step)

    def artifact(self, path: Path, folder: str | None = None) -> None:
        if path.exists():
            self.mlflow.log_artifact(str(path), artifact_path=folder)

    def close(self) -> None:
        self.mlflow.end_run()
