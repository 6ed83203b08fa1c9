#!/usr/bin/python3
"""Writes the small images of tests/test_image_folder.cpp (run once; the files are committed).

Needs Pillow (Debian: python3-pil). Every lossless image's pixels follow a formula the test
computes again, so the PNG values are checked exactly; each JPEG's pixels, as Pillow (through
libjpeg-turbo) decodes them, are written to jpeg_reference.txt for the test to compare against.

    tests/data/images/make_images.py        # from anywhere; writes beside this script
"""
import io
import os
import shutil
import struct
import zlib

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def value(x, y, c, seed):
    """The 8-bit value of channel c at column x, row y (the test's pattern())."""
    return (37 * x + 23 * y + 91 * c + 13 * seed) % 256


def value16(x, y):
    """The 16-bit gray value at column x, row y (the test's pattern16())."""
    return (4099 * x + 771 * y + 1) % 65536


def value16c(x, y, c):
    """The 16-bit value of channel c at column x, row y of the deep/ images (the test's pattern16c())."""
    return (4099 * x + 771 * y + 9001 * c + 1) % 65536


def raw_png(rel, width, height, color_type, depth, pixel, interlace=False):
    """A PNG written byte by byte (Pillow writes neither 16-bit colour nor Adam7): pixel(x, y) gives
    the tuple of sample values; every scanline has filter 0."""
    def scan(rows):
        return b"".join(b"\0" + b"".join(v.to_bytes(depth // 8, "big") for px in row for v in px) for row in rows)
    if not interlace:
        data = scan([[pixel(x, y) for x in range(width)] for y in range(height)])
    else:  # Adam7: seven passes of (first column, first row, column step, row step)
        data = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            rows = [[pixel(x, y) for x in range(x0, width, dx)] for y in range(y0, height, dy)]
            data += scan([r for r in rows if r])

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    write(rel, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data, 9)) + chunk(b"IEND", b""))


def image(mode, width, height, seed, channels):
    data = bytes(value(x, y, c, seed) for y in range(height) for x in range(width) for c in range(channels))
    return Image.frombytes(mode, (width, height), data)


def save(img, rel, **kwargs):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kwargs)
    return path


def write(rel, data):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    for d in ("folder", "resize", "deep", "broken"):
        shutil.rmtree(os.path.join(HERE, d), ignore_errors=True)
    jpegs = []

    # folder/: three classes of 8x8 images, every kind the reader converts.
    save(image("L", 8, 8, 1, 1), "folder/circle/gray.png")                    # 8-bit gray
    save(image("LA", 8, 8, 2, 2), "folder/circle/gray_alpha.png")             # gray + alpha (dropped)
    save(image("RGBA", 8, 8, 3, 4), "folder/circle/rgba.png")                 # RGB + alpha (dropped)
    jpegs.append(save(image("RGB", 8, 8, 4, 3), "folder/circle/rgb.jpg", quality=90))
    write("folder/circle/notes.txt", b"not an image: skipped and counted\n")
    save(image("RGB", 8, 8, 5, 3), "folder/square/rgb.png")                   # 8-bit RGB
    g16 = Image.new("I;16", (8, 8))
    g16.putdata([value16(x, y) for y in range(8) for x in range(8)])
    save(g16, "folder/square/gray16.png")                                     # 16-bit gray
    pal = Image.new("P", (8, 8))
    pal.putpalette([255, 0, 0, 0, 128, 255, 10, 20, 30, 200, 200, 200])
    pal.putdata([(x + 2 * y) % 4 for y in range(8) for x in range(8)])
    save(pal, "folder/square/palette.png")                                    # palette (4 colours)
    jpegs.append(save(image("L", 8, 8, 6, 1), "folder/triangle/gray.JPEG", quality=90))  # gray JPEG
    bits = Image.new("1", (8, 8))
    bits.putdata([255 if (x + y) % 2 else 0 for y in range(8) for x in range(8)])
    save(bits, "folder/triangle/bilevel.png")                                 # 1-bit gray
    save(image("RGB", 8, 8, 7, 3), "folder/triangle/rgb.png")

    # resize/: a 2x2 gray checkerboard, 0 255 / 255 0, for the bilinear case worked by hand.
    save(Image.frombytes("L", (2, 2), bytes([0, 255, 255, 0])), "resize/a/checker.png")
    save(image("RGB", 6, 5, 8, 3), "resize/b/wide.png")                       # 6 wide, 5 high

    # deep/: 16-bit colour and gray-alpha, and an interlaced PNG.
    raw_png("deep/a/gray_alpha16.png", 8, 8, 4, 16, lambda x, y: (value16(x, y), 12345))
    raw_png("deep/a/rgb16.png", 8, 8, 2, 16, lambda x, y: tuple(value16c(x, y, c) for c in range(3)))
    raw_png("deep/a/rgba16.png", 8, 8, 6, 16, lambda x, y: tuple(value16c(x, y, c) for c in range(3)) + (7,))
    raw_png("deep/a/interlaced.png", 8, 8, 2, 8, lambda x, y: tuple(value(x, y, c, 11) for c in range(3)), interlace=True)

    # broken/: one folder per fault.
    good_png = io.BytesIO()
    image("RGB", 8, 8, 9, 3).save(good_png, format="PNG")
    write("broken/truncated_png/a/cut.png", good_png.getvalue()[:60])  # IHDR intact, IDAT cut
    good_jpeg = io.BytesIO()
    image("RGB", 8, 8, 9, 3).save(good_jpeg, format="JPEG", quality=90)
    sos = good_jpeg.getvalue().find(b"\xff\xda")  # the start of scan: headers intact, the scan cut
    write("broken/truncated_jpeg/a/cut.jpg", good_jpeg.getvalue()[:sos + 30])
    write("broken/text_png/a/letter.png", b"Dear reader, this is not a PNG.\n")
    save(image("L", 8, 8, 1, 1), "broken/mismatch/a/big.png")
    save(image("L", 6, 5, 1, 1), "broken/mismatch/a/wide.png")
    save(image("CMYK", 8, 8, 10, 4), "broken/cmyk/a/cmyk.jpg", quality=90)

    with open(os.path.join(HERE, "jpeg_reference.txt"), "w") as f:
        f.write("# path (under tests/data/images) channels height width, then the values in CHW order,\n")
        f.write("# as Pillow decodes them (make_images.py)\n")
        for path in jpegs:
            img = Image.open(path)
            img.load()
            c = len(img.getbands())
            w, h = img.size
            px = img.tobytes()
            chw = [px[(y * w + x) * c + k] for k in range(c) for y in range(h) for x in range(w)]
            f.write(f"{os.path.relpath(path, HERE)} {c} {h} {w} {' '.join(map(str, chw))}\n")


if __name__ == "__main__":
    main()
