#!/usr/bin/env python3
"""Re-runs reference_gpt2.py and compares its output with the committed golden file.

Usage: check_reference.py FIXTURES_DIR COMMITTED_JSON FRESH_JSON
Exit 0 when every number agrees to 1e-9 (relative) and every id list is equal.
"""
import json
import math
import os
import subprocess
import sys

fixtures, committed, fresh = sys.argv[1:4]
script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_gpt2.py")
subprocess.run([sys.executable, script, fixtures, fresh, "--no-float32-check"], check=True, stdout=subprocess.DEVNULL)


def compare(a, b, path):
    if isinstance(a, dict):
        if set(a) != set(b):
            sys.exit("%s: keys differ" % path)
        for k in a:
            compare(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        if len(a) != len(b):
            sys.exit("%s: lengths differ" % path)
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, "%s[%d]" % (path, i))
    elif isinstance(a, float) or isinstance(b, float):
        if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            sys.exit("%s: %r != %r" % (path, a, b))
    elif a != b:
        sys.exit("%s: %r != %r" % (path, a, b))


with open(committed) as f, open(fresh) as g:
    old, new = json.load(f), json.load(g)
compare(old["models"], new["models"], "models")
print("golden file matches a fresh run of reference_gpt2.py")
