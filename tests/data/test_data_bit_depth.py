"""16-bit images (issue 16 item 4): PIL decodes a 16-bit grey PNG as mode I;16, which convert("RGB") clips at 255, so
such a file used to train as a white square. They are scaled to 8 bits by the high byte (the rule PIL applies to
16-bit colour PNGs), float pixels are refused with the reason, and the data check names every 16-bit file."""

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest
from datakit import png_bytes, smooth_image
from PIL import Image

from difftui.engine.config.catalog import Catalog
from difftui.engine.data import build_dataset
from difftui.engine.data.decode import Unreadable, decode
from difftui.engine.data.quality import check_dataset, quality_markdown

SIZE = 16


def png16_rgb(values: np.ndarray) -> bytes:
    """A real 16-bit RGB PNG (colour type 2, bit depth 16) of uint16 [H, W, 3] (PIL cannot write one)."""
    h, w, _ = values.shape
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def saved(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def ramp(seed: int) -> np.ndarray:
    """16-bit grey values over the whole range (most of them above 255: clipping would make them white)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, size=(SIZE, SIZE), dtype=np.uint16)


def sixteen_bit_files() -> dict[str, tuple[bytes, np.ndarray]]:
    """name -> (file bytes, the expected 8-bit grey or RGB values)."""
    g, gb, gi = ramp(1), ramp(2), ramp(3)
    rgb = np.random.default_rng(4).integers(0, 65536, size=(SIZE, SIZE, 3), dtype=np.uint16)
    return {
        "grey16.png": (saved(Image.fromarray(g), "PNG"), (g >> 8).astype(np.uint8)),                      # I;16
        "grey16b.tif": (saved(Image.fromarray(gb.astype(">u2")), "TIFF"), (gb >> 8).astype(np.uint8)),  # I;16B
        "grey32.tif": (saved(Image.fromarray(gi.astype(np.int32)), "TIFF"), (gi >> 8).astype(np.uint8)),  # I
        "rgb16.png": (png16_rgb(rgb), (rgb >> 8).astype(np.uint8)),                                       # 16-bit RGB
    }


def test_16_bit_images_decode_scaled_to_8_bits_not_clipped():
    files = sixteen_bit_files()
    modes = {name: Image.open(io.BytesIO(data)).mode for name, (data, _) in files.items()}
    assert modes == {"grey16.png": "I;16", "grey16b.tif": "I;16B", "grey32.tif": "I", "rgb16.png": "RGB"}
    for name, (data, expected) in files.items():
        img = decode(data)
        assert np.array_equal(np.asarray(img), expected), name
        assert img.info["bit_depth"] == (32 if name == "grey32.tif" else 16), name
    # What convert() alone made of the grey file: mostly white (the defect), far from the scaled values.
    clipped = np.asarray(Image.open(io.BytesIO(files["grey16.png"][0])).convert("L"))
    assert (clipped == 255).mean() > 0.9 and (files["grey16.png"][1] == 255).mean() < 0.01


def test_float_pixels_are_refused_with_the_reason():
    img = Image.fromarray(ramp(5).astype(np.float32))
    with pytest.raises(Unreadable, match=r"32-bit float pixels \(mode F\) have no fixed range") as err:
        decode(saved(img, "TIFF"))
    assert err.value.reason == "unsupported format"


def folder_of_16_bit_images(root):
    root.mkdir()
    files = sixteen_bit_files()
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    (root / "float.tif").write_bytes(saved(Image.fromarray(ramp(6).astype(np.float32)), "TIFF"))
    (root / "plain.png").write_bytes(png_bytes(smooth_image(0, size=(SIZE, SIZE))))
    return files


def folder_profile(root):
    return dataclasses.replace(Catalog().get("datasets", "image-folder"), root=str(root), resolution=SIZE,
                               heldout=0.0, labels="none", num_classes=0)


def test_training_sees_the_scaled_pixels_of_16_bit_files(tmp_path):
    files = folder_of_16_bit_images(tmp_path / "pics")
    ds = build_dataset(folder_profile(tmp_path / "pics"))
    assert ds.images.dtype.is_floating_point is False and ds.shape == (3, SIZE, SIZE)
    got = {ds.images[i].numpy().tobytes() for i in range(len(ds))}
    for name, (_, expected) in files.items():
        rgb = expected if expected.ndim == 3 else np.stack([expected] * 3, -1)
        assert rgb.transpose(2, 0, 1).tobytes() in got, name
    assert len(ds) == 5 and [n for n, _ in ds.skipped] == ["float.tif"]


def test_a_pixel_cache_of_an_image_folder_follows_the_decoder_version(tmp_path, monkeypatch):
    """A cache written when 16-bit files were clipped to white (decoder 1) is never read for today's pixels."""
    from difftui.engine.data import decode as decode_module
    from difftui.engine.data.cache import cache_dir_for
    profile, cifar = folder_profile(tmp_path / "pics"), Catalog().get("datasets", "cifar10")
    today, cifar_today = cache_dir_for(profile, "same files"), cache_dir_for(cifar, "k")
    monkeypatch.setattr(decode_module, "DECODE_VERSION", 1)
    assert cache_dir_for(profile, "same files") != today
    assert cache_dir_for(cifar, "k") == cifar_today               # arrays, not decoded files: their cache stays


def test_the_data_check_names_the_16_bit_files_and_the_refused_float_one(tmp_path):
    folder_of_16_bit_images(tmp_path / "pics")
    table = check_dataset(folder_profile(tmp_path / "pics"), workers=0)
    deep = table["high_bit_depth"]
    assert deep["count"] == 4 and deep["bits"] == [16, 32]
    assert sorted(deep["files"]) == [["grey16.png", 16], ["grey16b.tif", 16], ["grey32.tif", 32], ["rgb16.png", 16]]
    assert table["corrupt"]["files"] == [["float.tif", "unsupported format",
                                          "32-bit float pixels (mode F) have no fixed range to scale to 8 bits; "
                                          "save the image as an 8- or 16-bit PNG"]]
    text = quality_markdown(table)
    assert "| bit depth | 4 of 6 files have 16/32 bits per channel: scaled to 8 bits by the high byte" in text
    assert "- `rgb16.png`: 16-bit" in text and "- `grey16.png`: 16-bit" in text
