"""A bar chart as a PNG, with the Python standard library only (zlib and struct), so the report
needs nothing installed: an RGB canvas, rectangles, a 5x7 bitmap font, and the PNG encoder."""

import struct
import zlib

# 5x7 glyphs: seven rows of five bits (the high bit is the left column), as 14 hex digits.
FONT = {
    '0': '0e11131519110e', '1': '040c040404040e', '2': '0e11010204081f', '3': '1f02040201110e',
    '4': '02060a121f0202', '5': '1f101e0101110e', '6': '0608101e11110e', '7': '1f010204080808',
    '8': '0e11110e11110e', '9': '0e11110f01020c', 'A': '0e1111111f1111', 'B': '1e11111e11111e',
    'C': '0e11101010110e', 'D': '1c12111111121c', 'E': '1f10101e10101f', 'F': '1f10101e101010',
    'G': '0e11101711110f', 'H': '1111111f111111', 'I': '0e04040404040e', 'J': '0702020202120c',
    'K': '11121418141211', 'L': '1010101010101f', 'M': '111b1515111111', 'N': '11111915131111',
    'O': '0e11111111110e', 'P': '1e11111e101010', 'Q': '0e11111115120d', 'R': '1e11111e141211',
    'S': '0f10100e01011e', 'T': '1f040404040404', 'U': '1111111111110e', 'V': '11111111110a04',
    'W': '1111111515150a', 'X': '11110a040a1111', 'Y': '1111110a040404', 'Z': '1f01020408101f',
    'a': '00000e010f110f', 'b': '1010161911111e', 'c': '00000e1010110e', 'd': '01010d1311110f',
    'e': '00000e111f100e', 'f': '0609081c080808', 'g': '0f11110f01010e', 'h': '10101619111111',
    'i': '04000c0404040e', 'j': '0200060202120c', 'k': '10101214181412', 'l': '0c04040404040e',
    'm': '00001a15151111', 'n': '00001619111111', 'o': '00000e1111110e', 'p': '1e11111e101010',
    'q': '0f11110f010101', 'r': '00001619101010', 's': '00000e100e011e', 't': '08081c08080906',
    'u': '0000111111130d', 'v': '00001111110a04', 'w': '0000111115150a', 'x': '0000110a040a11',
    'y': '1111110f01010e', 'z': '00001f0204081f', ' ': '00000000000000', '.': '00000000000c0c',
    ',': '000000000c0408', ':': '000c0c000c0c00', ';': '000c0c000c0408', '-': '0000001f000000',
    '_': '0000000000001f', '(': '02040808080402', ')': '08040202020408', '[': '0e08080808080e',
    ']': '0e02020202020e', '/': '00010204081000', '%': '18190204081303', '~': '00000815020000',
    '=': '00001f001f0000', '+': '0004041f040400', '*': '0004150e150400', '?': '0e110102040004',
    '!': '04040404040004', '|': '04040404040404', "'": '0c040800000000', '"': '0a0a0a00000000',
    '<': '02040810080402', '>': '08040201020408', '#': '0a0a1f0a1f0a0a', '&': '0c12140815120d',
    '@': '0e11010d15150e', '$': '040f140e051e04',
}
GLYPH_W, GLYPH_H = 5, 7
DESCENDERS = "gjpqy"  # drawn two rows lower, below the baseline


class Canvas:
    """Width x height RGB pixels, white to start with."""

    def __init__(self, width, height, background=(255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0, y0, x1, y1, color):
        """Fills [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, int(x0)), min(self.width, int(x1))
        y0, y1 = max(0, int(y0)), min(self.height, int(y1))
        if x0 >= x1:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    @staticmethod
    def text_width(text, scale):
        return len(text) * (GLYPH_W + 1) * scale - scale if text else 0

    def text(self, x, y, text, color=(0, 0, 0), scale=2):
        """Draws TEXT with its top-left corner at (x, y); unknown characters as '?'."""
        for i, ch in enumerate(text):
            rows = FONT.get(ch, FONT["?"])
            gx = x + i * (GLYPH_W + 1) * scale
            gy = y + (2 * scale if ch in DESCENDERS else 0)
            for r in range(GLYPH_H):
                bits = int(rows[2 * r:2 * r + 2], 16)
                for c in range(GLYPH_W):
                    if bits & (1 << (GLYPH_W - 1 - c)):
                        self.rect(gx + c * scale, gy + r * scale, gx + (c + 1) * scale, gy + (r + 1) * scale, color)

    def centered_text(self, cx, y, text, color=(0, 0, 0), scale=2):
        self.text(int(cx - self.text_width(text, scale) / 2), y, text, color, scale)

    def png(self):
        """The canvas as PNG bytes (8-bit RGB, no filtering)."""
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride]) for y in range(self.height))

        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def nice_step(top, ticks=5):
    """A round tick step (1, 2 or 5 times a power of ten) giving about TICKS ticks up to TOP."""
    raw = max(top, 1e-9) / ticks
    power = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 10 ** -len(str(int(1 / raw)))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def fmt(v):
    return ("%.0f" % v) if v >= 10 or v == int(v) else ("%.2g" % v if v < 1 else "%.1f" % v)


FOOTNOTE_COLOR = (60, 60, 60)


def footnote_top(height, lines, n):
    """Where line N of a footnote of LINES lines starts (y), at the foot of a chart HEIGHT high."""
    return height - 22 * (lines - n) - 4


def bar_chart(bars, title, subtitle, ylabel, width=960, height=500, footnote=()):
    """BARS: dicts with 'label' (list of lines), 'value' (float or None), 'color', 'note' (text shown
    above the bar, or in place of a missing one). FOOTNOTE: lines centred below the chart (the
    canvas grows by 22 pixels a line). Returns PNG bytes."""
    footnote = list(footnote or [])
    height += 22 * len(footnote)
    c = Canvas(width, height)
    left, right, top, bottom = 90, 30, 96, 70 + 22 * len(footnote)
    for n, line in enumerate(footnote):
        c.centered_text(width / 2, footnote_top(height, len(footnote), n), line, FOOTNOTE_COLOR, 2)
    plot_w, plot_h = width - left - right, height - top - bottom
    c.centered_text(width / 2, 14, title, scale=3)
    c.centered_text(width / 2, 46, subtitle, color=(80, 80, 80), scale=2)
    values = [b["value"] for b in bars if b.get("value") is not None]
    vmax = max(values) if values else 1.0
    step = nice_step(vmax * 1.1)
    ymax = step * (int(vmax * 1.1 / step) + 1)
    # Grid, ticks and the y axis label.
    n_ticks = int(round(ymax / step))
    for i in range(n_ticks + 1):
        v = i * step
        y = top + plot_h - int(plot_h * v / ymax)
        c.rect(left, y, left + plot_w, y + 1, (225, 225, 225) if i else (0, 0, 0))
        label = fmt(v)
        c.text(left - 10 - c.text_width(label, 2), y - 7, label, (60, 60, 60), 2)
    c.rect(left, top, left + 1, top + plot_h + 1, (0, 0, 0))
    c.text(left - 10 - c.text_width(ylabel, 2) // 2, top - 26, ylabel, (60, 60, 60), 2)
    # The bars.
    slot = plot_w / max(1, len(bars))
    bar_w = min(110, slot * 0.55)
    for i, b in enumerate(bars):
        cx = left + slot * (i + 0.5)
        base = top + plot_h
        if b.get("value") is not None:
            h = max(1, int(plot_h * b["value"] / ymax))
            c.rect(cx - bar_w / 2, base - h, cx + bar_w / 2, base, b["color"])
            c.centered_text(cx, base - h - 20, b.get("note") or fmt(b["value"]), (0, 0, 0), 2)
        else:
            c.centered_text(cx, base - 24, b.get("note") or "no value", (190, 30, 30), 2)
        for j, line in enumerate(b["label"]):
            c.centered_text(cx, base + 12 + j * 20, line, (0, 0, 0), 2)
    return c.png()
