#!/usr/bin/env python3
"""Draws the app and tray icons (no image library needed): a rounded square, the "A" of Assemble
as a stack of build layers, and a status dot whose colour is the backend's state.
Run: python3 icons/make_icons.py  (writes the PNGs next to this file)."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
STATES = {
    "stopped": (140, 140, 150),
    "starting": (240, 170, 30),
    "running": (40, 180, 90),
    "error": (220, 60, 60),
    "unavailable": (90, 90, 100),
}
BLUE = (29, 99, 237)


def png(path, size, pixel):
    rows = b""
    for y in range(size):
        rows += b"\x00" + b"".join(bytes(pixel(x + 0.5, y + 0.5, size)) for x in range(size))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def inside_rounded(x, y, size, radius):
    cx = min(max(x, radius), size - radius)
    cy = min(max(y, radius), size - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def layers(x, y, size):
    """Three stacked bars, narrowing upwards: build layers."""
    u = size / 32
    for i, (top, half) in enumerate([(8, 5), (14, 8), (20, 11)]):
        if top * u <= y < (top + 4) * u and abs(x - 16 * u) <= half * u:
            return True
    return False


def icon(dot, with_background=True):
    def pixel(x, y, size):
        u = size / 32
        if dot and (x - 25 * u) ** 2 + (y - 25 * u) ** 2 <= (6 * u) ** 2:
            inner = (x - 25 * u) ** 2 + (y - 25 * u) ** 2 <= (4.6 * u) ** 2
            return (*dot, 255) if inner else (255, 255, 255, 255)
        if layers(x, y, size):
            return (255, 255, 255, 255) if with_background else (*BLUE, 255)
        if with_background and inside_rounded(x, y, size, 6 * u):
            return (*BLUE, 255)
        return (0, 0, 0, 0)
    return pixel


if __name__ == "__main__":
    for size, name in [(32, "32x32.png"), (128, "128x128.png"), (256, "128x128@2x.png"), (512, "icon.png")]:
        png(os.path.join(HERE, name), size, icon(None))
    for state, colour in STATES.items():
        png(os.path.join(HERE, f"tray-{state}.png"), 64, icon(colour))
