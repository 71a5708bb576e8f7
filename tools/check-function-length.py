#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fails if a C function in piemud, piemuctl and their helpers is longer than the limit.

A function's length counts from the line with its name to the line of its closing brace, both
included: what a reader has to hold in mind at once. Past about 120 lines a function does several
things; split it into helpers whose names say what each does (do not squeeze lines).

Usage: tools/check-function-length.py [--max LINES] [--root DIR] [FILE...]
With no FILE, every .c and .h file under the directories below (relative to DIR, by default the
checkout this script is in). Prints each function over the limit as path:line and fails; otherwise
prints the longest function of each directory.

The parser is a small one of our own, so that the check needs nothing but Python: comments, string
and character literals and preprocessor lines are blanked (keeping line numbers), then every "{" at
file scope that follows a parameter list, ")" optionally followed by __attribute__((...)) or
_attribute_ macros, opens a function whose name is the identifier before that list.
"""

import argparse
import os
import re
import sys

DIRS = ["src/daemon", "src/ctl", "src/shared", "src/shim", "src/image-extract"]
MAX_LINES = 120

# Functions that were already longer than the limit when the check came, with the length they had
# then. They may shrink but not grow, and each must leave this list once it is under the limit
# (the check fails on an entry that is no longer needed, so the list can only get shorter).
KNOWN_LONG = {}

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def blank(text):
    """text with comments, literals and preprocessor lines replaced by spaces, newlines kept."""
    out = []
    i, n = 0, len(text)
    line_start = True  # only whitespace since the last newline
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
            continue
        if line_start and c == "#":
            # A directive, with its continuation lines.
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        if not c.isspace():
            line_start = False
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def skip_space_back(s, i):
    while i >= 0 and s[i].isspace():
        i -= 1
    return i


def matching_open(s, close):
    """Index of the "(" that the ")" at close closes, or -1."""
    depth = 0
    for i in range(close, -1, -1):
        if s[i] == ")":
            depth += 1
        elif s[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    return -1


def ident_before(s, i):
    """(start, identifier) ending at s[i] (after spaces), or (i, None)."""
    end = skip_space_back(s, i)
    start = end
    while start >= 0 and (s[start].isalnum() or s[start] == "_"):
        start -= 1
    word = s[start + 1:end + 1]
    return (start + 1, word) if IDENT.fullmatch(word) else (i, None)


def function_name(s, brace):
    """The (offset, name) of the function whose body opens at s[brace], or None."""
    i = skip_space_back(s, brace - 1)
    # Attribute macros between the parameter list and the body: _pure_, __attribute__((x)).
    while i >= 0:
        if s[i] == ")":
            open_ = matching_open(s, i)
            if open_ < 0:
                return None
            start, word = ident_before(s, open_ - 1)
            if word is None:
                return None  # "= (type){": a compound literal, not a function
            if word != "__attribute__":
                return start, word
            i = skip_space_back(s, start - 1)
            continue
        start, word = ident_before(s, i)
        if word is None or not (word.startswith("_") and word.endswith("_")):
            return None  # struct, enum, union or an initializer
        i = skip_space_back(s, start - 1)
    return None


def functions(path):
    """(name, first line, last line) of each function defined in path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        s = blank(f.read())
    found = []
    depth = 0
    opened = None  # (name offset, name) of the function being read
    line = 1
    name_line = 0
    for i, c in enumerate(s):
        if c == "\n":
            line += 1
        elif c == "{":
            if depth == 0:
                opened = function_name(s, i)
                if opened:
                    name_line = s.count("\n", 0, opened[0]) + 1
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise SyntaxError(f"{path}:{line}: unbalanced }}")
            if depth == 0 and opened:
                found.append((opened[1], name_line, line))
                opened = None
    if depth != 0:
        raise SyntaxError(f"{path}: unbalanced {{ at the end of the file")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=MAX_LINES, help="longest allowed function, in lines")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    root = os.path.normpath(args.root)

    files = [os.path.relpath(os.path.abspath(f), root) for f in args.files]
    if not files:
        for d in DIRS:
            for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
                dirnames[:] = sorted(x for x in dirnames if x != "corpus")
                files += [os.path.relpath(os.path.join(dirpath, f), root)
                          for f in sorted(filenames) if f.endswith((".c", ".h"))]
    if not files:
        print(f"check-function-length: no C files under {root} ({', '.join(DIRS)})", file=sys.stderr)
        return 1

    too_long, longest, count = [], {}, 0
    seen_known = set()
    for rel in files:
        try:
            funcs = functions(os.path.join(root, rel))
        except (OSError, SyntaxError) as e:
            print(f"check-function-length: {e}", file=sys.stderr)
            return 1
        for name, first, last in funcs:
            count += 1
            length = last - first + 1
            d = os.path.dirname(rel)
            if d not in longest or length > longest[d][0]:
                longest[d] = (length, name, rel)
            known = KNOWN_LONG.get((rel, name))
            if known is not None:
                seen_known.add((rel, name))
                if length > args.max and length <= known:
                    continue
                if length <= args.max:
                    too_long.append(f"{rel}:{first}: {name} is {length} lines now: remove it from "
                                    f"KNOWN_LONG in {os.path.basename(__file__)}")
                    continue
            if length > args.max:
                allowed = f"{known}, as before" if known else args.max
                too_long.append(f"{rel}:{first}: {name} is {length} lines (at most {allowed})")

    if not args.files:
        for rel, name in sorted(set(KNOWN_LONG) - seen_known):
            too_long.append(f"{rel}: {name} is gone: remove it from KNOWN_LONG in {os.path.basename(__file__)}")
    if too_long:
        print(f"check-function-length: functions longer than {args.max} lines (split them into "
              "helpers named after what they do):", file=sys.stderr)
        for t in too_long:
            print(f"  {t}", file=sys.stderr)
        return 1
    print(f"check-function-length: {count} functions in {len(files)} files, none over {args.max} lines"
          + (f" apart from the {len(seen_known)} in KNOWN_LONG" if seen_known else "") + "; the longest by directory:")
    for d in sorted(longest):
        length, name, rel = longest[d]
        print(f"  {length:4} {name} ({rel})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
