"""Competition tables, the image reader, the pre-flight image scan and the dataset every stage uses."""

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd
import PIL.Image
import torch
from omegaconf import DictConfig

from podium.errors import PodiumError

log = logging.getLogger(__name__)

SHOW_AT_MOST = 10
REDUCED_COLOR = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


# ---------------------------------------------------------------- images

def jpeg_reduction(path: str | Path, target_size: int | None) -> int:
    """Return the largest JPEG decode scale (1, 2, 4 or 8) that keeps the short side at least `target_size`."""
    if target_size is None or Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        return 1
    try:
        with PIL.Image.open(path) as image:
            short_side = min(image.size)
    except (OSError, PIL.UnidentifiedImageError):
        return 1
    for factor in (8, 4, 2):
        if short_side // factor >= target_size:
            return factor
    return 1


def read_image(path: str | Path, target_size: int | None = None) -> np.ndarray:
    """Read an image file as an RGB uint8 array of shape (height, width, 3).

    Grayscale, palette and 16-bit files are converted, an alpha channel is dropped and an
    EXIF orientation is applied. A 16-bit image is scaled to 8 bits, not clipped. With
    `target_size`, a JPEG much larger than it is decoded at 1/2, 1/4 or 1/8 scale, which is
    several times faster and still leaves the short side at least `target_size`.
    """
    reduction = jpeg_reduction(path, target_size)
    if reduction > 1:
        image = cv2.imread(str(path), REDUCED_COLOR[reduction])
    else:
        # IMREAD_ANYDEPTH keeps 16-bit samples; IMREAD_ANYCOLOR keeps grayscale as one channel.
        # Both flags, unlike IMREAD_UNCHANGED, let OpenCV apply the EXIF orientation.
        image = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise PodiumError(f"cannot read image {path}: the file is missing, truncated or not an image")

    if image.dtype == np.uint16:
        image = (image.astype(np.float32) * (255.0 / 65535.0)).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise PodiumError(f"unsupported pixel type {image.dtype} in {path}: convert it to 8- or 16-bit PNG or JPEG")

    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def check_images(paths: Sequence[str], kind: str) -> None:
    """Raise PodiumError listing every missing or undecodable image, so one run finds all bad files."""
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise PodiumError(
            f"{len(missing)} of {len(paths)} {kind} images are missing, e.g. {missing[:SHOW_AT_MOST]}. "
            f"Check competition.root, the image folder and competition.image_path in the config."
        )

    def decodes(path: str) -> bool:
        if cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) is None:
            return False
        # OpenCV decodes a truncated JPEG with only a printed warning; Pillow raises on it.
        try:
            with PIL.Image.open(path) as image:
                image.load()
        except PIL.UnidentifiedImageError:
            return True  # a format OpenCV reads and Pillow does not know
        except OSError:
            return False
        return True

    # OpenCV releases the GIL while decoding, so threads scan in parallel.
    with ThreadPoolExecutor(max_workers=8) as pool:
        unreadable = [path for path, ok in zip(paths, pool.map(decodes, paths)) if not ok]
    if unreadable:
        raise PodiumError(
            f"{len(unreadable)} of {len(paths)} {kind} images cannot be decoded (truncated or not an image), "
            f"e.g. {unreadable[:SHOW_AT_MOST]}. Replace or remove these files and their rows."
        )
    log.info("checked %d %s images: all present and readable", len(paths), kind)


# ---------------------------------------------------------------- tables

def read_table(path: Path, description: str, dtype=None) -> pd.DataFrame:
    """Read a CSV file; `dtype` is passed to pandas (str keeps ids such as "007" as written)."""
    if not path.is_file():
        raise PodiumError(f"{description} not found: {path}. Check competition.root in the config, or run `make demo-data` for the demo")
    try:
        table = pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PodiumError(f"cannot parse {description} {path} as CSV: {error}") from error
    if table.empty:
        raise PodiumError(f"{description} {path} has no rows")
    return table


def require_columns(table: pd.DataFrame, columns: Sequence[str | None], path: Path) -> None:
    for column in columns:
        if column is not None and column not in table.columns:
            raise PodiumError(
                f"column {column!r} not found in {path}; its columns are {list(table.columns)}. "
                f"Set the matching competition.*_column key in the config."
            )


def image_paths(relative: Sequence[str], base: Path) -> list[str]:
    """Join relative image paths to `base`, rejecting any that resolve outside it."""
    base = base.resolve()
    paths = [base / name for name in relative]
    outside = [str(path) for path in paths if not path.resolve().is_relative_to(base)]
    if outside:
        raise PodiumError(f"{len(outside)} image paths point outside {base}, e.g. {outside[:SHOW_AT_MOST]}. Use paths inside the image folder.")
    return [str(path) for path in paths]


def relative_paths(table: pd.DataFrame, config: DictConfig) -> pd.Series:
    """Return each row's image path inside its folder: the path column, or the `image_path` template filled with the id."""
    comp = config.competition
    if comp.path_column is not None and comp.path_column in table.columns:
        return table[comp.path_column].astype(str)
    return table[comp.id_column].astype(str).map(lambda image_id: comp.image_path.format(id=image_id))


def list_images(folder: Path, recursive: bool) -> list[Path]:
    if not folder.is_dir():
        raise PodiumError(f"image folder not found: {folder}. Check competition.root and the image folder keys in the config")
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in files if path.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(config: DictConfig) -> pd.DataFrame:
    """Read the ImageFolder layout, train_images/<class>/<file>, into id, label and path columns."""
    comp = config.competition
    base = Path(comp.root) / comp.train_images
    files = [path for path in list_images(base, recursive=True) if path.parent != base]
    if not files:
        raise PodiumError(f"no images found in class subfolders of {base}; with competition.train_csv=null each class needs its own subfolder")

    relative = [path.relative_to(base) for path in files]
    return pd.DataFrame({
        comp.id_column: [str(item.with_suffix("")) for item in relative],
        comp.target_column: [item.parts[0] for item in relative],
        "path": [str(item) for item in relative],
    })


def decode_one_hot(raw: pd.DataFrame, columns: list[str], ids: pd.Series, path: Path) -> pd.Series:
    """Turn one 0/1 column per class into a label column; each row needs exactly one 1."""
    require_columns(raw, columns, path)
    values = raw[columns].to_numpy()
    valid = np.isin(values, [0, 1]).all(axis=1) & ((values == 1).sum(axis=1) == 1)
    if not valid.all():
        raise PodiumError(
            f"{int((~valid).sum())} rows of {path} do not have exactly one 1 among the one-hot columns {columns}, "
            f"e.g. ids {ids[~valid].tolist()[:SHOW_AT_MOST]}. Fix those rows or drop them."
        )
    return pd.Series(np.array(columns, dtype=object)[values.argmax(axis=1)], index=raw.index)


def class_list(config: DictConfig, labels: pd.Series) -> list:
    """Return the classes in a fixed order: the config's list, the one-hot columns, else the sorted labels."""
    comp = config.competition
    if comp.classes is not None:
        return list(comp.classes)
    if comp.target_columns is not None:
        return list(comp.target_columns)
    return sorted(labels.unique().tolist())


def read_train_rows(config: DictConfig) -> tuple[pd.DataFrame, Path]:
    """Return the raw training rows, from train.csv or from the ImageFolder layout, and where they came from."""
    comp = config.competition
    if comp.train_csv is None:
        return read_image_folder(config), Path(comp.root) / comp.train_images

    path = Path(comp.root) / comp.train_csv
    raw = read_table(path, "training table", dtype={comp.id_column: str})
    target = None if comp.target_columns is not None else comp.target_column
    require_columns(raw, [comp.id_column, target, comp.group_column, comp.path_column], path)
    return raw, path


def read_train_labels(config: DictConfig) -> tuple[pd.DataFrame, Path, pd.Series, pd.Series, list]:
    """Read the training rows, check their ids and labels, and return (rows, file or folder read, ids, labels, classes)."""
    comp = config.competition
    raw, path = read_train_rows(config)

    ids = raw[comp.id_column].astype(str)
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise PodiumError(f"{len(duplicated)} ids appear more than once in {path}, e.g. {duplicated[:SHOW_AT_MOST]}. Each row needs a unique {comp.id_column}.")

    if comp.target_columns is not None:
        labels = decode_one_hot(raw, list(comp.target_columns), ids, path)
    else:
        labels = raw[comp.target_column]
    empty = labels.isna() | (labels.astype(str).str.strip() == "")
    if empty.any():
        raise PodiumError(f"{int(empty.sum())} rows of {path} have an empty {comp.target_column!r}, e.g. ids {ids[empty].tolist()[:SHOW_AT_MOST]}. Fill or drop them.")

    classes = class_list(config, labels)
    unknown = sorted(set(labels.unique().tolist()) - set(classes), key=str)
    if unknown:
        raise PodiumError(f"labels {unknown[:SHOW_AT_MOST]} in {path} are not in competition.classes {classes}. Add them to the list or set it to null.")
    return raw, path, ids, labels, classes


def train_classes(config: DictConfig) -> list:
    """Return the class list of the training table, without resolving its image paths."""
    return read_train_labels(config)[-1]


def load_train_table(config: DictConfig) -> tuple[pd.DataFrame, list]:
    """Read the training rows into columns id, path, label, target (class index) and, if configured, group."""
    comp = config.competition
    raw, _, ids, labels, classes = read_train_labels(config)

    relative = raw["path"] if comp.train_csv is None else relative_paths(raw, config)
    table = pd.DataFrame({
        "id": ids,
        "path": image_paths(relative, Path(comp.root) / comp.train_images),
        "label": labels,
        "target": labels.map({label: i for i, label in enumerate(classes)}).astype(int),
    })
    if comp.group_column is not None:
        table["group"] = raw[comp.group_column].astype(str).to_numpy()
    return table, classes


def load_test_table(config: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the submission template and a table of test id and image path.

    The template is sample_submission.csv, unchanged. Without one (competition.sample_submission
    null), it lists every image of the flat test folder, with the id column and either the target
    column or one column per one-hot class.
    """
    comp = config.competition
    base = Path(comp.root) / comp.test_images
    if comp.sample_submission is None:
        files = list_images(base, recursive=False)
        if not files:
            raise PodiumError(f"no test images found in {base}")
        ids = [path.stem for path in files]
        columns = list(comp.target_columns) if comp.target_columns is not None else [comp.target_column]
        template = pd.DataFrame({comp.id_column: ids, **{column: "" for column in columns}})
        return template, pd.DataFrame({"id": ids, "path": image_paths([path.name for path in files], base)})

    path = Path(comp.root) / comp.sample_submission
    template = read_table(path, "sample submission", dtype=str)
    require_columns(template, [comp.id_column], path)
    ids = template[comp.id_column].astype(str)
    return template, pd.DataFrame({"id": ids, "path": image_paths(relative_paths(template, config), base)})


def read_folds(config: DictConfig, table: pd.DataFrame) -> np.ndarray:
    """Return the fold of each row of the training table, checking that folds.csv matches it."""
    path = Path(config.folds.file)
    if not path.is_file():
        raise PodiumError(f"folds file not found: {path}. Run `make folds` first.")
    folds = pd.read_csv(path, dtype={"id": str})

    by_id = dict(zip(folds["id"], folds["fold"]))
    missing = [image_id for image_id in table["id"] if image_id not in by_id]
    if missing or len(folds) != len(table):
        raise PodiumError(
            f"{path} does not match the training table ({len(folds)} rows in folds, {len(table)} in train, "
            f"{len(missing)} train ids without a fold, e.g. {missing[:10]}). Run `make folds` again."
        )
    if folds["fold"].nunique() != config.folds.n_folds:
        raise PodiumError(f"{path} has {folds['fold'].nunique()} folds but folds.n_folds is {config.folds.n_folds}. Run `make folds` again.")
    return table["id"].map(by_id).to_numpy()


# ---------------------------------------------------------------- dataset

class ImageDataset(torch.utils.data.Dataset):
    """Images read from disk (or a RAM cache), passed through an albumentations pipeline.

    Indexing with an (epoch, index) pair seeds the pipeline from (seed, epoch, index), so every
    sample's augmentation is reproducible. A plain index leaves the pipeline's state as it is.
    Yields (image, target), with target -1 for unlabeled images.
    """

    def __init__(self, paths: Sequence[str], targets: Sequence[int] | None, transform: Callable, image_size: int | None = None):
        self.paths = list(paths)
        # Class indices, or rows packed by losses.encode_targets when pseudo-labels join training.
        self.targets = None if targets is None else np.asarray(targets)
        if self.targets is not None and self.targets.ndim == 1:
            self.targets = self.targets.astype(np.int64)
        self.transform = transform
        self.image_size = image_size
        self.seed = 0
        self.cache: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        if self.cache is not None:
            return self.cache[index]
        return read_image(self.paths[index], self.image_size)

    def fill_cache(self) -> int:
        """Decode and resize every image into one uint8 array; return its size in bytes.

        One array, allocated before the workers fork, is shared by all of them without copies.
        """
        size = self.image_size
        cache = np.empty((len(self.paths), size, size, 3), dtype=np.uint8)

        def fill(index: int) -> None:
            cache[index] = cv2.resize(read_image(self.paths[index], size), (size, size), interpolation=cv2.INTER_LINEAR)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(fill, range(len(self.paths))))
        self.cache = cache
        return cache.nbytes

    def seed_sample(self, epoch: int, index: int) -> None:
        """Seed the pipeline from (seed, epoch, index) with one generator pair that all its transforms share.

        Measured on a 2-core Xeon, this costs about 19 us per sample. Compose.set_random_seed,
        which builds a NumPy and a Python generator for every transform, costs about 84 us.
        """
        generator = np.random.default_rng([self.seed, epoch, index])
        self.transform.set_random_state(generator, random.Random(int(generator.integers(2**63))))

    def __getitem__(self, item):
        if isinstance(item, tuple):
            epoch, index = item
            self.seed_sample(epoch, index)
        else:
            index = item
        image = self.transform(image=self.load(index))["image"]
        target = -1 if self.targets is None else self.targets[index]
        return image, target
