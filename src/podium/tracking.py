"""Weights & Biases tracking: one run per fold and stage, offline unless the user opted in.

A failure inside wandb (a full disk, a crash of its service) is logged once, and tracking
stops for that run. Training goes on.
"""

import logging
import os
import subprocess
from pathlib import Path

from omegaconf import DictConfig

from podium import config as configs

log = logging.getLogger(__name__)


def default_to_offline() -> None:
    """Set WANDB_MODE=offline unless the user chose a mode or logged in (WANDB_API_KEY or a netrc entry).

    Passing mode="offline" to wandb.init alone is not enough: wandb's telemetry can still try
    the network after the run. The environment variable covers the whole process.
    """
    if "WANDB_MODE" in os.environ or "WANDB_API_KEY" in os.environ:
        return
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        logged_in = "api.wandb.ai" in netrc.read_text()
    except OSError:
        logged_in = False
    if not logged_in:
        os.environ["WANDB_MODE"] = "offline"


def git_state() -> dict:
    """Return the current git commit and whether the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": bool(status.strip())}


class Tracker:
    """A wandb run for one fold or stage, or nothing when `tracking.wandb` is false."""

    def __init__(self, config: DictConfig, job_type: str, name: str, enabled: bool = True):
        self.run = None
        if not (enabled and config.tracking.wandb):
            return
        default_to_offline()
        folder = Path(config.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        settings = {**configs.to_plain(config), **git_state()}
        self.call(
            "start",
            self.start,
            project=config.tracking.project,
            entity=config.tracking.entity,
            group=config.name,
            job_type=job_type,
            name=name,
            config=settings,
            dir=str(folder),
        )

    def start(self, **arguments) -> None:
        import wandb

        self.run = wandb.init(reinit="finish_previous", **arguments)
        log.info("W&B run %s (%s, group %s, mode %s) in %s", arguments["name"], arguments["job_type"], arguments["group"], os.environ.get("WANDB_MODE", "online"), self.run.dir)

    def call(self, action: str, function, *args, **kwargs) -> None:
        """Run a wandb call; on any error, log it once and stop tracking this run."""
        if action != "start" and self.run is None:
            return
        try:
            function(*args, **kwargs)
        except Exception as error:  # wandb can fail in many ways (disk, service, network); none may stop training
            log.warning("W&B %s failed, tracking is off for this run and training continues: %s: %s", action, type(error).__name__, error)
            self.run = None

    def log(self, values: dict, step: int | None = None) -> None:
        self.call("log", lambda: self.run.log(values, step=step))

    def log_updates(self, records: list[dict]) -> None:
        """Log the per-update training loss and learning rate, stepped by optimizer update."""
        for record in records:
            self.log({"train/loss": record["train_loss"], "train/lr": record["lr"]}, step=record["update"])

    def summary(self, **values) -> None:
        self.call("summary", lambda: self.run.summary.update(values))

    def log_table(self, key: str, frame) -> None:
        def upload():
            import wandb

            self.run.log({key: wandb.Table(dataframe=frame)})

        self.call("table", upload)

    def log_confusion_matrix(self, key: str, y_true, y_pred, classes: list) -> None:
        def upload():
            import wandb

            plot = wandb.plot.confusion_matrix(y_true=list(map(int, y_true)), preds=list(map(int, y_pred)), class_names=[str(name) for name in classes])
            self.run.log({key: plot})

        self.call("confusion matrix", upload)

    def log_checkpoint(self, name: str, path: Path) -> None:
        def upload():
            import wandb

            artifact = wandb.Artifact(name, type="model")
            artifact.add_file(str(path))
            self.run.log_artifact(artifact)

        self.call("artifact", upload)

    def finish(self) -> None:
        self.call("finish", lambda: self.run.finish())
        self.run = None
