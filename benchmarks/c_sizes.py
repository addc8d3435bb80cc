"""Lines per C file in csrc/ and the longest function of each.

A function is counted from the first line of its signature to its closing
brace, both at column 0 (the style of csrc/). Usage::

    python benchmarks/c_sizes.py [--all]
"""
import re
import sys
from pathlib import Path

CSRC = Path(__file__).resolve().parent.parent / "csrc"
_SIGNATURE = re.compile(r"^(?:KERNEL\s+)?(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w\s\*]*?\b(\w+)\(")


def functions(text):
    """(name, first line, line count) of each function defined in text."""
    lines = text.splitlines()
    out, start, name = [], None, None
    for i, line in enumerate(lines):
        if start is None:
            m = _SIGNATURE.match(line)
            if m and not line.rstrip().endswith(";") and not line.startswith(("typedef", "#")):
                if line.rstrip().endswith("}"):  # a one-line body
                    out.append((m.group(1), i + 1, 1))
                else:
                    start, name = i, m.group(1)
        elif line.rstrip().endswith(";") and not any(x.startswith("{") for x in lines[start:i + 1]):
            start = None  # a declaration spanning lines
        elif line.startswith("}"):
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def main(argv):
    rows = []
    for path in sorted(CSRC.glob("*.[ch]")):
        text = path.read_text()
        fns = functions(text)
        longest = max(fns, key=lambda f: f[2], default=("-", 0, 0))
        rows.append((path.name, len(text.splitlines()), longest))
        if "--all" in argv:
            for name, line, n in sorted(fns, key=lambda f: -f[2]):
                print(f"    {path.name}:{line} {name} {n}")
    print(f"{'file':<14}{'lines':>6}  longest function")
    for name, n, (fn, _, length) in rows:
        print(f"{name:<14}{n:>6}  {fn} ({length} lines)" if length else f"{name:<14}{n:>6}  -")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
