#!/usr/bin/env python3
"""The image-heavy site of scripts/bench-pages: writes it into DIR, then serves DIR on 127.0.0.1:PORT.

Two pages, a.html and b.html, each linking to the other with #next, each with IMAGES large PNGs (blocky noise:
small files, full-size bitmaps once decoded), FONTS web fonts (copies of DejaVu under distinct URLs), a large
stylesheet using them and CSS background images. Every answer is `Cache-Control: no-store`, so each load
fetches everything again, in our executor and in puppeteer-core alike.

Usage: bench_pages_site.py DIR PORT [IMAGES] [FONTS]   (prints "ready" once listening)
"""
import glob
import http.server
import os
import random
import shutil
import struct
import sys
import zlib


def png(width, height, block, seed):
    rnd = random.Random(seed)
    rows = []
    for _ in range(height // block):
        row = bytearray()
        for _ in range(width // block):
            row += bytes(rnd.randrange(256) for _ in range(3)) * block
        rows.extend([b"\x00" + bytes(row)] * block)
    raw = b"".join(rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height // block * block, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def build(root, images, fonts):
    os.makedirs(root, exist_ok=True)
    if os.path.exists(os.path.join(root, "a.html")):
        return
    distinct = [png(1600, 1000, 8, s) for s in range(4)]
    for i in range(images * 2 + 8):
        with open(os.path.join(root, f"img{i}.png"), "wb") as f:
            f.write(distinct[i % len(distinct)])
    sources = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf")) or [None]
    for i in range(fonts * 2):
        src = sources[i % len(sources)]
        if src:
            shutil.copy(src, os.path.join(root, f"font{i}.ttf"))
    for page, other, offset in (("a", "b", 0), ("b", "a", images)):
        css = []
        for i in range(fonts):
            css.append(f"@font-face {{ font-family: f{i}; src: url(font{offset // images * fonts + i}.ttf); }}")
            css.append(f".t{i} {{ font-family: f{i}; font-size: {14 + i}px; }}")
        for i in range(4):
            css.append(f".bg{i} {{ background: url(img{images * 2 + offset // images * 4 + i}.png); "
                       "width: 400px; height: 250px; background-size: cover; }")
        # Bulk: many rules, as a real site's framework stylesheet has.
        for i in range(3000):
            css.append(f".c{i} > .d{i % 97}:hover {{ margin: {i % 13}px; color: #{i * 2654435761 % 0xFFFFFF:06x}; }}")
        with open(os.path.join(root, f"{page}.css"), "w") as f:
            f.write("\n".join(css))
        body = [f'<p><a id="next" href="{other}.html">next</a></p>']
        body += [f'<p class="t{i}">The quick brown fox jumps over the lazy dog {i}.</p>' for i in range(fonts)]
        body += [f'<div class="bg{i}"></div>' for i in range(4)]
        body += [f'<img src="img{offset + i}.png" width="400" height="250">' for i in range(images)]
        html = (f'<!doctype html><html><head><title>{page}</title><link rel="stylesheet" href="{page}.css">'
                f'</head><body><h1>Page {page}</h1>{"".join(body)}</body></html>')
        with open(os.path.join(root, f"{page}.html"), "w") as f:
            f.write(html)


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def main():
    root, port = sys.argv[1], int(sys.argv[2])
    images = int(sys.argv[3]) if len(sys.argv) > 3 else 24
    fonts = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    build(root, images, fonts)
    os.chdir(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
