#!/usr/bin/env python3
"""Checks that every #include "folder/..." in agent/ follows docs/layers.md (CTest `layers`).

Reads the table of docs/layers.md (folder -> may include), then every .hpp/.cpp under agent/.
Prints one line per violation (file:line: folder -> included folder, and the allowed list) and
exits 1 when there is any; exits 0 otherwise.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
table = root / "docs" / "layers.md"
allowed = {}
for line in table.read_text().splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 3 or not cells[0].startswith("`"):
        continue
    folder = cells[0].strip("`")
    may = cells[2]
    if may == "*":
        allowed[folder] = None
    elif may in ("—", "-", ""):
        allowed[folder] = set()
    else:
        allowed[folder] = {m.strip() for m in may.split(",")}
if not allowed:
    sys.exit(f"{table}: no table rows found")

include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
errors = []
agent = root / "agent"
for path in sorted(agent.rglob("*")):
    if path.suffix not in (".hpp", ".cpp", ".h") or not path.is_file():
        continue
    rel = path.relative_to(agent)
    folder = rel.parts[0] if len(rel.parts) > 1 else "."
    if folder not in allowed:
        errors.append(f"agent/{rel}: folder '{folder}' has no row in docs/layers.md")
        continue
    may = allowed[folder]
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = include.match(line)
        if not m or "/" not in m.group(1):
            continue
        target = m.group(1).split("/")[0]
        if target == folder or may is None or target in may:
            continue
        errors.append(f"agent/{rel}:{n}: {folder} -> {target} not allowed "
                      f"(docs/layers.md: {folder} may include {', '.join(sorted(may)) or 'nothing'})")
for e in errors:
    print(e)
if errors:
    print(f"layers: {len(errors)} include(s) break docs/layers.md", file=sys.stderr)
    sys.exit(1)
print(f"layers: {len(allowed)} folders, all includes follow docs/layers.md")
