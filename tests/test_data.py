"""Tests for podium.data: the image reader, the image scan and the competition tables."""

import cv2
import numpy as np
import pytest
from PIL import Image

from podium.config import load_config
from podium.data import check_images, load_test_table, load_train_table, read_image
from podium.errors import PodiumError

RED = (255, 0, 0)
BLUE = (0, 0, 255)

# Maximum per-channel difference accepted for JPEG files, whose compression shifts colors.
JPEG_TOLERANCE = 10


def assert_rgb_uint8(image, height, width):
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)


def assert_close(pixel, expected, tolerance=0):
    difference = np.abs(pixel.astype(int) - np.array(expected))
    assert difference.max() <= tolerance, f"pixel {pixel.tolist()} differs from {list(expected)}"


# ---------------------------------------------------------------- read_image

def test_read_image_red_png_is_rgb(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (5, 3), RED).save(path)

    image = read_image(path)

    assert_rgb_uint8(image, 3, 5)
    assert image[0, 0].tolist() == [255, 0, 0]


def test_read_image_red_jpeg_is_rgb(tmp_path):
    path = tmp_path / "red.jpg"
    Image.new("RGB", (16, 8), RED).save(path, quality=100)

    image = read_image(path)

    assert_rgb_uint8(image, 8, 16)
    assert_close(image[4, 8], RED, JPEG_TOLERANCE)


def test_read_image_grayscale_png(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (5, 3), 200).save(path)

    image = read_image(path)

    assert_rgb_uint8(image, 3, 5)
    assert image[1, 2].tolist() == [200, 200, 200]


def test_read_image_rgba_png_drops_alpha(tmp_path):
    path = tmp_path / "rgba.png"
    # Fully transparent red: the color must survive, not be blended with the alpha.
    Image.new("RGBA", (5, 3), (*RED, 0)).save(path)

    image = read_image(path)

    assert_rgb_uint8(image, 3, 5)
    assert image[0, 0].tolist() == [255, 0, 0]


def test_read_image_palette_png(tmp_path):
    path = tmp_path / "palette.png"
    palette_image = Image.new("P", (5, 3), 0)
    palette_image.putpalette([*BLUE, *RED])
    palette_image.putpixel((4, 2), 1)
    palette_image.save(path)
    assert Image.open(path).mode == "P"

    image = read_image(path)

    assert_rgb_uint8(image, 3, 5)
    assert image[0, 0].tolist() == list(BLUE)
    assert image[2, 4].tolist() == list(RED)


def test_read_image_16bit_gray_scaled(tmp_path):
    path = tmp_path / "gray16.png"
    cv2.imwrite(str(path), np.array([[65535, 32896, 0]], dtype=np.uint16))

    image = read_image(path)

    assert_rgb_uint8(image, 1, 3)
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[0, 1].tolist() == [128, 128, 128]
    assert image[0, 2].tolist() == [0, 0, 0]


def test_read_image_16bit_color_scaled(tmp_path):
    path = tmp_path / "color16.png"
    bgr = np.zeros((2, 3, 3), dtype=np.uint16)
    bgr[..., 2] = 65535  # OpenCV writes BGR, so channel 2 is red.
    bgr[..., 1] = 32896
    cv2.imwrite(str(path), bgr)

    image = read_image(path)

    assert_rgb_uint8(image, 2, 3)
    assert image[0, 0].tolist() == [255, 128, 0]


def test_read_image_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    # Zero cyan, full magenta and yellow, zero black is red.
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(path, quality=100)
    assert Image.open(path).mode == "CMYK"

    image = read_image(path)

    assert_rgb_uint8(image, 8, 16)
    assert_close(image[4, 8], RED, JPEG_TOLERANCE)


def test_read_image_progressive_jpeg(tmp_path):
    path = tmp_path / "progressive.jpg"
    Image.new("RGB", (16, 8), RED).save(path, progressive=True, quality=100)
    assert Image.open(path).info.get("progressive")

    image = read_image(path)

    assert_rgb_uint8(image, 8, 16)
    assert_close(image[4, 8], RED, JPEG_TOLERANCE)


def test_read_image_exif_rotation(tmp_path):
    path = tmp_path / "rotated.jpg"
    # 32 wide and 16 high: the left half is blue, the right half red.
    stored = Image.new("RGB", (32, 16), RED)
    stored.paste(BLUE, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: rotate 90 degrees clockwise to display.
    stored.save(path, exif=exif, quality=100)

    image = read_image(path)

    # After the clockwise turn the image is 16 wide and 32 high, with the blue half on top.
    assert_rgb_uint8(image, 32, 16)
    assert_close(image[4, 8], BLUE, JPEG_TOLERANCE)
    assert_close(image[27, 8], RED, JPEG_TOLERANCE)


def test_read_image_missing_file(tmp_path):
    path = tmp_path / "absent.png"

    with pytest.raises(PodiumError) as error:
        read_image(path)

    assert str(path) in str(error.value)


def test_read_image_garbage_file(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"this is not an image")

    with pytest.raises(PodiumError) as error:
        read_image(path)

    assert str(path) in str(error.value)


# ---------------------------------------------------------------- check_images

def write_png(path):
    cv2.imwrite(str(path), np.full((4, 4, 3), 90, dtype=np.uint8))
    return str(path)


def test_check_images_all_readable(tmp_path):
    paths = [write_png(tmp_path / f"ok{i}.png") for i in range(3)]

    check_images(paths, "training")


def test_check_images_missing_count(tmp_path):
    present = write_png(tmp_path / "present.png")
    missing = [str(tmp_path / f"missing{i:02d}.png") for i in range(12)]

    with pytest.raises(PodiumError) as error:
        check_images([present, *missing], "training")

    message = str(error.value)
    assert "12 of 13 training images are missing" in message
    for path in missing[:10]:
        assert path in message
    for path in missing[10:]:
        assert path not in message


def test_check_images_undecodable_listed(tmp_path):
    good = [write_png(tmp_path / f"good{i}.png") for i in range(2)]

    truncated = tmp_path / "truncated.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(truncated), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:200])

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")

    bad = [str(truncated), str(garbage), str(empty)]

    with pytest.raises(PodiumError) as error:
        check_images([*good, *bad], "test")

    message = str(error.value)
    assert "3 of 5 test images cannot be decoded" in message
    for path in bad:
        assert path in message
    for path in good:
        assert path not in message


# ---------------------------------------------------------------- tables

def make_config(root, *overrides):
    return load_config(None, [f"competition.root={root}", "competition.group_column=null", *overrides])


def write_csv(path, text):
    path.write_text(text)
    return path


def load_train_error(tmp_path, csv_text, *overrides):
    write_csv(tmp_path / "train.csv", csv_text)
    with pytest.raises(PodiumError) as error:
        load_train_table(make_config(tmp_path, *overrides))
    return str(error.value)


def test_train_table_valid(tmp_path):
    write_csv(tmp_path / "train.csv", "image_id,label,group\n007,dog,g1\n008,cat,g2\n009,dog,g1\n")
    config = load_config(None, [f"competition.root={tmp_path}"])

    table, classes = load_train_table(config)

    folder = (tmp_path / "train_images").resolve()
    assert classes == ["cat", "dog"]
    assert table["id"].tolist() == ["007", "008", "009"]
    assert table["target"].tolist() == [1, 0, 1]
    assert table["path"].tolist() == [str(folder / f"{name}.png") for name in ("007", "008", "009")]
    assert table["group"].tolist() == ["g1", "g2", "g1"]


def test_train_table_missing_file(tmp_path):
    with pytest.raises(PodiumError) as error:
        load_train_table(make_config(tmp_path))

    assert "training table not found" in str(error.value)
    assert str(tmp_path / "train.csv") in str(error.value)


def test_train_table_header_only(tmp_path):
    message = load_train_error(tmp_path, "image_id,label\n")

    assert "has no rows" in message


def test_train_table_missing_target_column(tmp_path):
    message = load_train_error(tmp_path, "image_id,class\na,cat\n")

    assert "column 'label' not found" in message
    assert "['image_id', 'class']" in message


def test_train_table_missing_group_column(tmp_path):
    write_csv(tmp_path / "train.csv", "image_id,label\na,cat\n")

    with pytest.raises(PodiumError) as error:
        load_train_table(load_config(None, [f"competition.root={tmp_path}"]))

    assert "column 'group' not found" in str(error.value)


def test_train_table_duplicate_ids(tmp_path):
    message = load_train_error(tmp_path, "image_id,label\na,cat\nb,dog\na,dog\n")

    assert "1 ids appear more than once" in message
    assert "['a']" in message


def test_train_table_nan_label(tmp_path):
    message = load_train_error(tmp_path, "image_id,label\na,cat\nb,\nc,dog\n")

    assert "1 rows" in message
    assert "empty 'label'" in message
    assert "['b']" in message


def test_train_table_blank_label(tmp_path):
    message = load_train_error(tmp_path, "image_id,label\na,cat\nb,  \n")

    assert "empty 'label'" in message
    assert "['b']" in message


def test_train_table_label_not_in_classes(tmp_path):
    message = load_train_error(tmp_path, "image_id,label\na,cat\nb,bird\n", "competition.classes=[cat,dog]")

    assert "labels ['bird']" in message
    assert "['cat', 'dog']" in message


def test_train_table_explicit_class_order(tmp_path):
    write_csv(tmp_path / "train.csv", "image_id,label\na,cat\nb,dog\n")

    table, classes = load_train_table(make_config(tmp_path, "competition.classes=[dog,cat,bird]"))

    assert classes == ["dog", "cat", "bird"]
    assert table["target"].tolist() == [1, 0]


def test_train_table_path_outside_folder(tmp_path):
    message = load_train_error(
        tmp_path, "image_id,label,path\na,cat,a.png\nb,dog,../secret.png\n", "competition.path_column=path"
    )

    assert "1 image paths point outside" in message
    assert "secret.png" in message


def test_train_table_integer_labels(tmp_path):
    write_csv(tmp_path / "train.csv", "image_id,label\na,9\nb,3\nc,7\nd,3\n")

    table, classes = load_train_table(make_config(tmp_path))

    assert classes == [3, 7, 9]
    assert table["target"].tolist() == [2, 0, 1, 0]


def test_train_table_subfolder_paths(tmp_path):
    write_csv(tmp_path / "train.csv", "image_id,label,path\na,cat,cats/a.png\nb,dog,dogs/2024/b.jpg\n")

    table, _ = load_train_table(make_config(tmp_path, "competition.path_column=path"))

    folder = (tmp_path / "train_images").resolve()
    assert table["path"].tolist() == [str(folder / "cats" / "a.png"), str(folder / "dogs" / "2024" / "b.jpg")]


def test_test_table_valid(tmp_path):
    write_csv(tmp_path / "sample_submission.csv", "image_id,label\n001,0\n002,0\n")

    template, table = load_test_table(make_config(tmp_path))

    folder = (tmp_path / "test_images").resolve()
    assert template.columns.tolist() == ["image_id", "label"]
    assert template["image_id"].tolist() == ["001", "002"]
    assert table["path"].tolist() == [str(folder / "001.png"), str(folder / "002.png")]


def test_test_table_header_only(tmp_path):
    write_csv(tmp_path / "sample_submission.csv", "image_id,label\n")

    with pytest.raises(PodiumError) as error:
        load_test_table(make_config(tmp_path))

    assert "sample submission" in str(error.value)
    assert "has no rows" in str(error.value)


def test_test_table_missing_id_column(tmp_path):
    write_csv(tmp_path / "sample_submission.csv", "id,label\n1,0\n")

    with pytest.raises(PodiumError) as error:
        load_test_table(make_config(tmp_path))

    assert "column 'image_id' not found" in str(error.value)
    assert "['id', 'label']" in str(error.value)


def test_test_table_id_outside_folder(tmp_path):
    write_csv(tmp_path / "sample_submission.csv", "image_id,label\n../../escape,0\n")

    with pytest.raises(PodiumError) as error:
        load_test_table(make_config(tmp_path))

    assert "point outside" in str(error.value)


def test_train_table_missing_path_column(tmp_path):
    message = load_train_error(tmp_path, "image_id,label\na,cat\n", "competition.path_column=file")
    assert "column 'file' not found" in message


def test_check_images_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:2000])

    with pytest.raises(PodiumError) as error:
        check_images([str(path)], "training")
    assert str(path) in str(error.value)


def test_large_jpeg_decoded_at_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((800, 1200, 3), (200, 30, 30), dtype=np.uint8)).save(path, quality=95)

    reduced = read_image(path, target_size=96)
    full = read_image(path)

    assert reduced.shape == (100, 150, 3)
    assert full.shape == (800, 1200, 3)
    assert_close(reduced[50, 75], (200, 30, 30), JPEG_TOLERANCE)


def test_small_target_keeps_short_side(tmp_path):
    path = tmp_path / "medium.jpg"
    Image.fromarray(np.zeros((300, 500, 3), dtype=np.uint8)).save(path)
    assert min(read_image(path, target_size=100).shape[:2]) >= 100
