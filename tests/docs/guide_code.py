#!/usr/bin/env python3
"""The guide's C++ is compiled code: every ```cpp block of the pages checked is lines of an example
program that the build compiles and ctest runs, so that the guide cannot drift from the library.

    guide_code.py ROOT [PAGE.md ...]      (default: ROOT/docs/guide/*.md and ROOT/README.md)

A block's first line names its program, e.g. `// examples/save_and_resume.cpp`. The program marks
each excerpt the guide shows by two lines `// [guide:TAG]` around it. The block's other lines must
be one marked excerpt's lines, consecutive and in order, compared with their whitespace
normalised (indentation is free, blank lines are ignored); a line `// ...` on the page (which
may go on to say what is left out) stands for lines left out. The program must be one that examples/CMakeLists.txt builds, and every marked
excerpt of the examples must be shown by some block (a mark nobody shows is stale).

Exit status 0 when every block is found, 1 otherwise (each problem on one line, naming the page
and line), 2 for bad arguments. Run by ctest as Docs.GuideCodeIsInTheExamples (label cpu).
"""
import glob
import os
import re
import sys

FENCE = re.compile(r"^\s*```\s*(\S*)")
CPP = {"cpp", "c++", "cxx", "cc"}
SOURCE = re.compile(r"^//\s*(examples/[\w.-]+\.(?:cpp|hpp))$")
MARK = re.compile(r"^//\s*\[guide:([\w-]+)\]$")
ELISION = re.compile(r"^(\.\.\.|// \.\.\.(\s.*)?)$")


def norm(line):
    return " ".join(line.split())


def blocks(page):
    """(line number of the block's first code line, [lines]) for each ```cpp block of the page."""
    found, lines, open_at, lang = [], None, 0, ""
    with open(page, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line)
            if lines is None:
                if m:
                    lines, open_at, lang = [], n + 1, m.group(1).lower()
            elif m and not m.group(1):
                if lang in CPP:
                    found.append((open_at, lines))
                lines = None
            else:
                lines.append(line.rstrip("\n"))
    if lines is not None:
        raise ValueError(f"{page}:{open_at - 1}: a code block that is never closed")
    return found


def regions(path, name):
    """{tag: [[normalised lines], ...]} of the excerpts marked in an example program (named name)."""
    marked, current = {}, None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            text = norm(line)
            m = MARK.match(text)
            if m and (current is None or m.group(1) == current[0]):
                if current is None:
                    current = (m.group(1), [], n)
                else:
                    marked.setdefault(current[0], []).append(current[1])
                    current = None
            elif current is not None and text and not m:
                current[1].append(text)
    if current is not None:
        raise ValueError(f"{name}:{current[2]}: // [guide:{current[0]}] is never closed")
    return marked


def match(segments, excerpt):
    """How many of the block's lines match the excerpt: every segment consecutive, in order."""
    at, matched = 0, 0
    for segment in segments:
        best = 0
        for start in range(at, len(excerpt) + 1):
            k = 0
            while k < len(segment) and start + k < len(excerpt) and excerpt[start + k] == segment[k]:
                k += 1
            if k == len(segment):
                at, best = start + k, k
                break
            best = max(best, k)
        matched += best
        if best < len(segment):
            return matched, False
    return matched, True


def built_examples(root):
    with open(os.path.join(root, "examples", "CMakeLists.txt"), encoding="utf-8") as f:
        text = f.read()
    names = set()
    for m in re.finditer(r"(?:set|list\(APPEND)\(?\s*examples\s+([^)]*)\)", text):
        names.update(m.group(1).split())
    return names


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = argv[1]
    pages = argv[2:] or sorted(glob.glob(os.path.join(root, "docs", "guide", "*.md"))) + [os.path.join(root, "README.md")]
    if not pages:
        print(f"guide_code: no pages under {root}/docs/guide", file=sys.stderr)
        return 2
    built = built_examples(root)
    problems, shown, checked = [], set(), 0
    cache = {}
    for page in pages:
        try:
            page_blocks = blocks(page)
        except ValueError as e:
            problems.append(str(e))
            continue
        name = os.path.relpath(page, root)
        for first, lines in page_blocks:
            body = [(first + i, norm(line)) for i, line in enumerate(lines) if norm(line)]
            where = f"{name}:{first}"
            source = SOURCE.match(body[0][1]) if body else None
            if not source:
                problems.append(f"{where}: a ```cpp block must name its program on its first line "
                                "(// examples/NAME.cpp)")
                continue
            program = source.group(1)
            stem = os.path.splitext(os.path.basename(program))[0]
            path = os.path.join(root, program)
            if not os.path.isfile(path):
                problems.append(f"{where}: {program}: no such file")
                continue
            if program.endswith(".cpp") and stem not in built:
                problems.append(f"{where}: {program} is not built by examples/CMakeLists.txt")
            try:
                marked = cache[program] if program in cache else cache.setdefault(program, regions(path, program))
            except ValueError as e:
                problems.append(str(e))
                continue
            segments, current, numbers = [], [], []
            for n, text in body[1:]:
                if ELISION.match(text):
                    if current:
                        segments.append(current)
                    current = []
                else:
                    current.append(text)
                    numbers.append(n)
            if current:
                segments.append(current)
            if not numbers:
                problems.append(f"{where}: the block shows no code")
                continue
            best, found = (-1, None), None
            for tag, excerpts in marked.items():
                for excerpt in excerpts:
                    matched, ok = match(segments, excerpt)
                    if ok:
                        found = tag
                        break
                    best = max(best, (matched, tag))
                if found:
                    break
            checked += 1
            if found:
                shown.add((program, found))
            elif not marked:
                problems.append(f"{where}: {program} marks no excerpt (// [guide:TAG] lines around it)")
            else:
                n = numbers[min(best[0], len(numbers) - 1)]
                problems.append(f"{name}:{n}: this line of the block is not where it should be in {program}'s "
                                f"excerpts (closest: [guide:{best[1]}], {best[0]} lines matched before it): "
                                f"'{lines[n - first].strip()}'")
    if len(argv) == 2:  # the whole guide: every marked excerpt must be shown somewhere
        for path in sorted(glob.glob(os.path.join(root, "examples", "*.cpp"))):
            program = os.path.relpath(path, root)
            try:
                tags = regions(path, program)
            except ValueError as e:
                problems.append(str(e))
                continue
            for tag in sorted(tags):
                if (program, tag) not in shown:
                    problems.append(f"{program}: the excerpt [guide:{tag}] is shown by no ```cpp block of the pages")
    for p in problems:
        print(f"guide_code: {p}")
    if problems:
        return 1
    print(f"guide_code: all {checked} ```cpp blocks of {len(pages)} pages are lines of compiled examples")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
