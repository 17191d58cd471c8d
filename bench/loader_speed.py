"""Benchmark 3: images per second of podium's training loader alone, without and with the RAM cache.

The loader is podium.loaders.train_loader over podium.data.ImageDataset with the demo's
augmentations at 64 px, on the training rows of fold 0, with the config's workers. Nothing
consumes the batches. "Cold" means data.cache null: every epoch decodes the PNG files, which
the operating system has in its page cache after the first pass. With data.cache=ram the
first epoch's loader time is the cache fill (decode and resize of every image, as
prepare_fold does before training) plus the first pass; later passes read the cache.

Each repeat builds fresh datasets and loaders and runs both variants in alternating order.
A per-image profile in one process shows where the loader's time goes. A second run, for
information, repeats the comparison with the same images stored as 512 px JPEG files.
"""

import argparse
import gc
import inspect
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

import common

TARGET = 0.2  # max time per image of the cached second epoch, as a share of the first epoch's
LARGE = 512  # side in pixels of the JPEG files of the second, informative run


def time_pass(loader, sampler, epoch: int) -> float:
    sampler.set_epoch(epoch)
    with common.Stopwatch() as watch:
        for _ in loader:
            pass
    return watch.seconds


def make_train_loader(dataset, config):
    """Return podium's training loader and its sampler, for either form of podium.loaders.train_loader.

    The older form is train_loader(dataset, batch_size, workers, seed) and returns (loader, sampler).
    The newer one, train_loader(dataset, sampler, workers), returns the loader alone.
    """
    from podium import loaders

    if "sampler" in inspect.signature(loaders.train_loader).parameters:
        sampler = loaders.EpochBatchSampler(len(dataset), config.data.batch_size, config.seed)
        return loaders.train_loader(dataset, sampler, config.data.num_workers), sampler
    return loaders.train_loader(dataset, config.data.batch_size, config.data.num_workers, config.seed)


def measure(config, rows, mean, std, cached: bool, epochs: int) -> dict:
    """Return the fill seconds and each epoch's seconds for one fresh dataset and loader."""
    from podium.data import ImageDataset
    from podium.transforms import build_transforms

    dataset = ImageDataset(rows["path"], rows["target"], build_transforms(config, mean, std, train=True), config.data.image_size)
    fill = 0.0
    if cached:
        with common.Stopwatch() as watch:
            dataset.fill_cache()
        fill = watch.seconds
    loader, sampler = make_train_loader(dataset, config)
    seconds = [time_pass(loader, sampler, epoch) for epoch in range(1, epochs + 1)]
    del loader, sampler, dataset
    gc.collect()  # ends the persistent workers before the next measurement
    return {"fill": fill, "epochs": seconds}


def microseconds_per_image(function, items) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)
    return 1e6 * (time.perf_counter() - start) / len(items)


def profile_one_image(config, rows, mean, std, count: int) -> None:
    """Print the per-image cost of each step of ImageDataset.__getitem__ and of batch collation, in one process."""
    import cv2

    from podium.data import ImageDataset, read_image
    from podium.transforms import build_transforms

    size = config.data.image_size
    paths = list(rows["path"][:count])
    transform = build_transforms(config, mean, std, train=True)
    decoded = [read_image(path, size) for path in paths]
    resized = [cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in decoded]

    dataset = ImageDataset(rows["path"][:count], rows["target"][:count], transform, size)
    steps = {"decode PNG (read_image)": microseconds_per_image(lambda path: read_image(path, size), paths)}
    steps["per-sample seeding"] = microseconds_per_image(lambda index: dataset.seed_sample(1, index), range(count))
    steps["whole albumentations pipeline"] = microseconds_per_image(lambda image: transform(image=image), resized)
    for step in transform.transforms:
        steps[f"  of which {type(step).__name__}"] = microseconds_per_image(lambda image, step=step: step(image=image), resized)

    steps["__getitem__, no cache"] = microseconds_per_image(lambda index: dataset[(1, index)], range(count))
    dataset.fill_cache()
    steps["__getitem__, RAM cache"] = microseconds_per_image(lambda index: dataset[(1, index)], range(count))
    samples = [dataset[(1, index)] for index in range(config.data.batch_size)]
    steps["default_collate, per image"] = microseconds_per_image(lambda _: default_collate(samples), range(20)) / len(samples)

    common.info(f"where one image's time goes, in one process with {torch.get_num_threads()} torch threads ({count} images):")
    for name, value in steps.items():
        common.info(f"  {name}: {value:.0f} us")


def compare(config, rows, mean, std, repeats: int, epochs: int) -> list[float]:
    """Time fresh cold and cached loaders in alternating order, print their rates and return each cached run's ratio."""
    images = len(rows)
    runs = {"cold": [], "ram": []}
    measure(config, rows, mean, std, cached=False, epochs=1)  # warms up the page cache and the workers
    for repeat in range(repeats):
        for name in common.rotated(["cold", "ram"], repeat):
            runs[name].append(measure(config, rows, mean, std, cached=name == "ram", epochs=epochs))

    def rate(seconds: float) -> float:
        return images / seconds

    cold_first = common.median([run["epochs"][0] for run in runs["cold"]])
    cold_later = common.median([second for run in runs["cold"] for second in run["epochs"][1:]])
    fill = common.median([run["fill"] for run in runs["ram"]])
    ram_pass_first = common.median([run["epochs"][0] for run in runs["ram"]])
    ram_later = common.median([second for run in runs["ram"] for second in run["epochs"][1:]])
    ratios = [run["epochs"][1] / (run["fill"] + run["epochs"][0]) for run in runs["ram"]]

    workers = " (worker start included)" if config.data.num_workers > 0 else ""
    common.info(f"cold: first epoch {rate(cold_first):.0f} img/s{workers}, later epochs {rate(cold_later):.0f} img/s")
    common.info(
        f"ram: cache fill {1e6 * fill / images:.0f} us/img, first pass {rate(ram_pass_first):.0f} img/s, "
        f"first epoch with the fill {rate(fill + ram_pass_first):.0f} img/s, later epochs {rate(ram_later):.0f} img/s"
    )
    common.info(f"later epochs, ram over cold: {cold_later / ram_later:.2f}x the images per second; 2nd / 1st epoch with the cache: {common.median(ratios):.3f}")
    return ratios


def write_large_jpegs(paths, folder: Path) -> list[str]:
    """Write each image upscaled to LARGE px as a JPEG file, far larger than the training size, and return the new paths."""
    import cv2

    folder.mkdir()
    written = []
    for index, path in enumerate(paths):
        target = str(folder / f"{index}.jpg")
        image = cv2.resize(cv2.imread(path), (LARGE, LARGE), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(target, image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh cold and cached runs each (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="passes per run (default 3)")
    args = parser.parse_args()
    common.quiet_logs()

    from podium.model import create_model, normalization
    from podium.train import split_fold

    print(f"== 3. loader throughput: {common.cpu_description()}, {common.load_note()}")
    with common.workspace("loader") as work:
        config = common.bench_config(work)
        common.write_folds(config)
        rows, _, classes = split_fold(config, 0)
        mean, std = normalization(create_model(config, len(classes)))
        common.info(f"fold 0: {len(rows)} training images, batch {config.data.batch_size}, {config.data.num_workers} workers, {args.epochs} passes per run")

        ratios = compare(config, rows, mean, std, args.repeats, args.epochs)
        profile_one_image(config, rows, mean, std, count=512)

        common.info(f"the same rows as {LARGE} px JPEG files (quality 90), which read_image decodes at 1/8 scale:")
        compare(config, rows.assign(path=write_large_jpegs(rows["path"], work / "large")), mean, std, args.repeats, args.epochs)

        common.result(
            "data: ram cache, 2nd epoch / 1st epoch time per image", common.median(ratios), "<=", TARGET,
            detail="per repeat " + ", ".join(f"{ratio:.3f}" for ratio in ratios),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
