"""Puts a benchmark script's section into bench/RESULTS.md (a benchmark aid).

    python3 bench/section.py NAME RESULTS REPORT

REPORT holds the section, from `<!-- NAME:begin -->` to `<!-- NAME:end -->`. It replaces the
section of that name in RESULTS, or is appended when RESULTS has none; bench/run.sh keeps every
such section when it rewrites the rest of the file.
"""
import os
import re
import sys


def main():
    name, results, report = sys.argv[1:4]
    section = open(report).read().rstrip("\n")
    text = open(results).read() if os.path.exists(results) else ""
    pattern = re.compile(r"<!-- %s:begin -->.*<!-- %s:end -->" % (re.escape(name), re.escape(name)), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda m: section, text)
    else:
        text = text + ("\n" if text else "") + section + "\n"
    with open(results, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
