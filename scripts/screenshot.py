#!/usr/bin/env python3
"""Renders a terminal screen, as `tmux capture-pane -e -p` prints it (text
with ANSI colour codes), to a PNG: the README's screenshot of the console.

Usage: scripts/screenshot.py SCREEN.ansi OUT.png
Needs Pillow (scripts/venv pillow) and Debian's fonts-dejavu-core.
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
BACKGROUND = (24, 26, 32)
FOREGROUND = (208, 208, 208)
# The 16 ANSI colours, as a dark terminal theme shows them.
PALETTE = [
    (24, 26, 32), (224, 90, 90), (120, 200, 110), (220, 190, 90),
    (100, 150, 230), (200, 120, 200), (90, 200, 210), (190, 190, 190),
    (110, 110, 120), (255, 120, 120), (150, 230, 140), (250, 220, 120),
    (140, 180, 255), (230, 150, 230), (130, 230, 240), (255, 255, 255),
]
SGR = re.compile(r"\x1b\[([0-9;]*)m")
# Box-drawing characters are drawn as lines, so borders join across rows.
BOX = {
    "─": "lr", "│": "ud", "╭": "rd", "┌": "rd", "╮": "ld", "┐": "ld",
    "╰": "ru", "└": "ru", "╯": "lu", "┘": "lu", "├": "udr", "┤": "udl",
    "┬": "lrd", "┴": "lru", "┼": "lrud",
}


def colour_256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def cells(line):
    """Each character of a line with its style: (char, fg, bg, bold)."""
    fg, bg, bold, reverse = None, None, False, False
    out = []
    pos = 0
    for m in SGR.finditer(line + "\x1b[m"):
        for ch in line[pos:m.start()]:
            f, b = (fg or FOREGROUND), (bg or BACKGROUND)
            if reverse:
                f, b = b, f
            out.append((ch, f, b, bold))
        pos = m.end()
        codes = [int(c) if c else 0 for c in m.group(1).split(";")]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                fg, bg, bold, reverse = None, None, False, False
            elif c == 1:
                bold = True
            elif c == 22:
                bold = False
            elif c == 7:
                reverse = True
            elif c == 27:
                reverse = False
            elif 30 <= c <= 37:
                fg = PALETTE[c - 30]
            elif 90 <= c <= 97:
                fg = PALETTE[c - 90 + 8]
            elif 40 <= c <= 47:
                bg = PALETTE[c - 40]
            elif 100 <= c <= 107:
                bg = PALETTE[c - 100 + 8]
            elif c == 39:
                fg = None
            elif c == 49:
                bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    rgb = colour_256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    rgb = tuple(codes[i + 2:i + 5])
                    i += 4
                else:
                    rgb = None
                if c == 38:
                    fg = rgb
                else:
                    bg = rgb
            i += 1
    return out


def main(source, target):
    lines = open(source, encoding="utf-8").read().rstrip("\n").split("\n")
    font = ImageFont.truetype(FONT, SIZE)
    bold = ImageFont.truetype(BOLD, SIZE)
    left, top, right, bottom = font.getbbox("M")
    width = round(font.getlength("M"))
    height = SIZE + 4
    rows = [cells(line) for line in lines]
    columns = max(len(r) for r in rows)
    pad = 12
    image = Image.new("RGB", (columns * width + 2 * pad, len(rows) * height + 2 * pad), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        for x, (ch, fg, bg, is_bold) in enumerate(row):
            px, py = pad + x * width, pad + y * height
            if bg != BACKGROUND:
                draw.rectangle([px, py, px + width - 1, py + height - 1], fill=bg)
            if ch in BOX:
                cx, cy = px + width // 2, py + height // 2
                ends = {"l": (px, cy), "r": (px + width, cy), "u": (cx, py), "d": (cx, py + height)}
                for way in BOX[ch]:
                    draw.line([(cx, cy), ends[way]], fill=fg, width=1)
            elif 0x2800 <= ord(ch) <= 0x28FF:
                # Braille (the charts' dots): not in the font, drawn as dots.
                bits = ord(ch) - 0x2800
                places = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
                for bit, (col, row) in enumerate(places):
                    if bits & (1 << bit):
                        dx = px + width * (1 + 2 * col) // 4
                        dy = py + height * (1 + 2 * row) // 8
                        draw.ellipse([dx - 1, dy - 1, dx + 1, dy + 1], fill=fg)
            elif ch.strip():
                draw.text((px, py + 1), ch, fill=fg, font=bold if is_bold else font)
    image.save(target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
