"""podium: a Kaggle-style image-classification competition pipeline."""

import os

# albumentations checks PyPI for a newer version at import unless this is set.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from podium.tracking import default_to_offline  # noqa: E402

# W&B stays offline unless the user set WANDB_MODE or logged in; `make sync` uploads later.
default_to_offline()

from podium.config import load_config  # noqa: E402
from podium.train import train_fold  # noqa: E402

__all__ = ["load_config", "train_fold"]
__version__ = "0.1.0"
