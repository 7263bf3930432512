#!/usr/bin/env python3
"""Folds `perf script` output into stacks and draws a self-contained SVG flamegraph.

Input: the text of `perf script` for a recording made with `perf record -g` or
`--call-graph dwarf` (stdin, or a file), or with --from-folded a folded-stacks file this tool
(or stackcollapse-perf) wrote. Outputs, each optional:
  --folded FILE   one line per distinct stack: frames root->leaf joined by ';', a space, the count
  --svg FILE      the flamegraph: widths proportional to samples, hover titles with full frame
                  names, samples and percentage; frames narrower than --min-width % are dropped
  --summary FILE  the top-down text summary (also printed on stdout unless -q)

The root frame of each stack is the process: the label given with --label PID=NAME, else
(with --per-process) the process's command name, else no process frame at all. Kernel frames
get the suffix `_[k]` (the convention of stackcollapse-perf), so they can be told apart.

Standard library only (Python 3.8+). `--self-test` folds an embedded sample and checks it.
"""

from __future__ import annotations

import argparse
import gzip
import html
import io
import re
import sys
from collections import defaultdict

# A sample's header: "comm  pid[/tid] [cpu] time: [period] event:". The command name may hold
# spaces and digits, so the pid is found as the first number followed by the time field.
HEADER_RE = re.compile(
    r"^(?P<comm>\S.*?)\s+(?P<pid>\d+)(?:/(?P<tid>\d+))?\s+(?:\[\d+\]\s+)?(?P<time>\d+\.\d+):"
    r"\s*(?:(?P<period>\d+)\s+)?(?P<event>\S+?):?\s"
)
# A frame line: "<tab>address symbol[+0xoff] (dso)".
FRAME_RE = re.compile(r"^\s+(?P<addr>[0-9a-fA-F]+)\s+(?P<sym>.*?)(?:\+0x[0-9a-fA-F]+)?\s+\((?P<dso>[^()]*)\)\s*$")
# Legacy Rust mangling leaves a hash suffix ("::h0123456789abcdef"); it only adds noise.
RUST_HASH_RE = re.compile(r"::h[0-9a-f]{16}$")

# Crates of runtime plumbing (async executor, HTTP/gRPC stack, std): their frames are hidden
# from the summary's "heaviest frames" lists (which say so), never from the folded stacks or the
# graph. Protobuf coding (prost) is real work and stays.
GENERIC_CRATES = {
    "tokio", "tokio_stream", "tokio_util", "futures", "futures_util", "futures_core", "futures_executor",
    "std", "core", "alloc", "hyper", "hyper_util", "http_body", "http_body_util", "tonic", "tower",
    "tower_http", "h2", "axum", "pin_project_lite", "tracing", "tracing_core",
}
GENERIC_SYMBOLS = {"_start", "__libc_start_main", "__libc_start_main_impl", "__libc_start_call_main", "main",
                   "start_thread", "clone", "clone3", "__clone", "__clone3", "[unknown]"}
PATH_START_RE = re.compile(r"^[<&\s]*(?:dyn |mut )?([A-Za-z_][A-Za-z0-9_]*)::")
# "<F as axum::handler::Handler<..>>::call": a bare type parameter, so the trait's crate decides.
BARE_SELF_RE = re.compile(r"^<&?(?:mut )?[A-Z][A-Za-z0-9_]* as ([A-Za-z_][A-Za-z0-9_]*)::")

def clean_symbol(sym: str) -> str:
    sym = RUST_HASH_RE.sub("", sym.strip())
    # ';' separates frames in the folded format (it can occur in Rust array types: [u8; 16]).
    return sym.replace(";", ",") or "[unknown]"


def is_kernel(dso: str) -> bool:
    return dso.startswith("[kernel") or dso.endswith(".ko")


def fold_perf_script(lines, labels: dict[int, str] | None = None, per_process: bool = False,
                     use_period: bool = False) -> dict[str, int]:
    """Folds perf script text into {stack: weight}; stacks root->leaf joined by ';'."""
    labels = labels or {}
    folded: dict[str, int] = defaultdict(int)
    header = None
    frames: list[tuple[str, str]] = []

    def flush():
        if header is None:
            return
        comm, pid, weight = header
        stack = []
        prev = None
        for addr, name in reversed(frames):
            # perf repeats an inlined frame line at times: the same address and symbol twice.
            if prev == (addr, name):
                continue
            prev = (addr, name)
            stack.append(name)
        if pid in labels:
            stack.insert(0, labels[pid])
        elif per_process:
            stack.insert(0, comm)
        if not stack:
            stack = [comm]
        folded[";".join(stack)] += weight

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            flush()
            header, frames = None, []
            continue
        if line.startswith("#"):
            continue
        if not line[0].isspace():
            flush()
            frames = []
            m = HEADER_RE.match(line)
            if not m:
                header = None
                continue
            weight = int(m.group("period")) if use_period and m.group("period") else 1
            header = (m.group("comm").strip(), int(m.group("pid")), weight)
            continue
        m = FRAME_RE.match(line)
        if not m or header is None:
            continue
        name = clean_symbol(m.group("sym"))
        dso = m.group("dso")
        if name == "[unknown]" and dso not in ("unknown", "[unknown]", "inlined"):
            name = dso if dso.startswith("[") else f"[{dso.rsplit('/', 1)[-1]}]"
        if is_kernel(dso):
            name += "_[k]"
        elif dso == "inlined":
            # DWARF names inlined functions without their module path ("run", "{closure#0}").
            name += "_[i]"
        frames.append((m.group("addr"), name))
    flush()
    return dict(folded)


def read_folded(lines) -> dict[str, int]:
    folded: dict[str, int] = defaultdict(int)
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        try:
            folded[stack] += int(count)
        except ValueError:
            raise SystemExit(f"bad folded line (no trailing count): {line[:200]!r}")
    return dict(folded)


def open_text(path: str, mode: str):
    """A text file, gzip-compressed when its name ends in .gz (folded Rust stacks are large)."""
    if path.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8", errors="replace")
    return open(path, mode, encoding="utf-8", errors="replace")


def write_folded(folded: dict[str, int], out) -> None:
    for stack in sorted(folded):
        out.write(f"{stack} {folded[stack]}\n")


# ------------------------------------------------------------------------------------------
# Display names
# ------------------------------------------------------------------------------------------


def shorten(name: str) -> str:
    """Collapses generic arguments (`Foo<Bar<Baz>>` -> `Foo<…>`) but keeps qualified paths
    (`<Foo as Trait>::method` stays readable, with the generics inside it collapsed)."""
    out = []
    i, n = 0, len(name)
    while i < n:
        c = name[i]
        if c == "<" and i > 0 and (name[i - 1].isalnum() or name[i - 1] in "_:"):
            depth, j = 0, i
            while j < n:
                if name[j] == "<":
                    depth += 1
                elif name[j] == ">" and name[j - 1] != "-":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            out.append("<…>")
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out).replace("::<…>", "<…>")


# ------------------------------------------------------------------------------------------
# Tree and SVG
# ------------------------------------------------------------------------------------------


class Node:
    __slots__ = ("name", "total", "self_", "children")

    def __init__(self, name: str):
        self.name = name
        self.total = 0
        self.self_ = 0
        self.children: dict[str, Node] = {}


def build_tree(folded: dict[str, int]) -> Node:
    root = Node("all")
    for stack, count in folded.items():
        root.total += count
        node = root
        for frame in stack.split(";"):
            child = node.children.get(frame)
            if child is None:
                child = node.children[frame] = Node(frame)
            child.total += count
            node = child
        node.self_ += count
    return root


def frame_crate(name: str) -> str | None:
    """The crate a frame's path starts with (for `<T as Trait>` the trait's), None if it has no path."""
    m = BARE_SELF_RE.match(name) or PATH_START_RE.match(name)
    return m.group(1) if m else None


def category(name: str, depth: int, labelled: set[str]) -> str:
    if depth == 1 and name in labelled:
        return "process"
    if name.endswith("_[k]"):
        return "kernel"
    bare = name[:-4] if name.endswith("_[i]") else name
    crate = frame_crate(bare)
    if crate is None:
        if bare.startswith(("__rust", "__memcpy", "__memmove", "__memset", "__memcmp", "malloc", "free", "_int_",
                            "cfree", "realloc", "__libc", "__GI_", "unlink_chunk")):
            return "std"
        return "other" if bare.startswith("[") else "nopath"
    if crate.startswith("hypnos") or crate in ("promql", "tsdb", "series", "generate"):
        return "hypnos"
    if crate in ("std", "core", "alloc"):
        return "std"
    return "crate"


# Fill colours by category: a base RGB and the spread the frame's name hash adds to it.
PALETTE = {
    "hypnos": ((230, 110, 40), (25, 90, 30)),   # warm orange-red: our own code
    "std": ((215, 190, 80), (25, 40, 30)),      # sand: Rust std/core/alloc and libc
    "crate": ((90, 170, 150), (30, 40, 40)),    # teal: third-party crates (tokio, hyper, ...)
    "kernel": ((110, 150, 220), (30, 30, 25)),  # blue: kernel
    "nopath": ((200, 200, 215), (25, 25, 25)),  # pale: inlined frames DWARF names without a path
    "other": ((170, 170, 170), (20, 20, 20)),   # grey: unknown or unsymbolised
    "process": ((170, 170, 190), (0, 0, 0)),    # the process role (root) frames
}


def colour(name: str, cat: str) -> str:
    (r, g, b), (dr, dg, db) = PALETTE[cat]
    h = 0
    for ch in name:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    f1, f2 = (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255
    return f"rgb({min(255, r + int(dr * f1))},{min(255, g + int(dg * f2))},{min(255, b + int(db * f1))})"


def render_svg(folded: dict[str, int], title: str, subtitle: str = "", width: int = 1200,
               min_width_pct: float = 0.1, labelled: set[str] | None = None) -> str:
    labelled = labelled or set()
    root = build_tree(folded)
    total = root.total or 1
    frame_h, font, pad_x, top = 16, 12, 10, 92
    usable = width - 2 * pad_x
    min_samples = total * min_width_pct / 100

    # Depth-first layout; only frames at or above the cut-off (their children are narrower).
    rects = []
    max_depth = 0

    def walk(node: Node, depth: int, x: float):
        nonlocal max_depth
        rects.append((node, depth, x))
        max_depth = max(max_depth, depth)
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            if child.total >= min_samples:
                walk(child, depth + 1, cx)
            cx += child.total

    walk(root, 0, 0)
    height = top + (max_depth + 1) * frame_h + 10
    char_w = font * 0.6
    out = io.StringIO()
    w = out.write
    w('<?xml version="1.0" standalone="no"?>\n')
    w(f'<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
      'xmlns="http://www.w3.org/2000/svg">\n')
    w("<style>text{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:%dpx;fill:#000}"
      "rect{stroke:#fff;stroke-width:0.5}g:hover rect{stroke:#000;stroke-width:1}"
      ".i{font-style:italic}.t{font-size:17px;font-weight:bold}.s{font-size:12px;fill:#444}</style>\n" % font)
    w(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f4" stroke="none"/>\n')
    w(f'<text class="t" x="{width / 2}" y="22" text-anchor="middle">{html.escape(title)}</text>\n')
    stats = f"{root.total} samples; frames under {min_width_pct}% hidden; hover for full names"
    fit = int((width - 2 * pad_x) / (12 * 0.6))
    for y, line in ((40, subtitle), (56, stats)):
        shown_line = line if len(line) <= fit else line[: fit - 2] + ".."
        w(f'<text class="s" x="{width / 2}" y="{y}" text-anchor="middle"><title>{html.escape(line)}</title>'
          f"{html.escape(shown_line)}</text>\n")
    # Legend, under the title.
    lx = pad_x
    ly = 76
    for cat, label in (("hypnos", "hypnos code"), ("std", "std/core/alloc/libc"), ("crate", "other crates"),
                       ("kernel", "kernel"), ("nopath", "no module path"), ("other", "unknown")):
        w(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour(label, cat)}"/>'
          f'<text x="{lx + 16}" y="{ly}">{label}</text>\n')
        lx += 16 + int(len(label) * char_w) + 18
    w(f'<text class="i" x="{lx}" y="{ly}">italic: inlined (perf _[i])</text>\n')
    base_y = top + max_depth * frame_h  # root at the bottom, leaves towards the top
    for node, depth, x in rects:
        px = pad_x + x / total * usable
        pw = node.total / total * usable
        py = base_y - depth * frame_h
        pct = 100.0 * node.total / total
        name = node.name if depth else "all"
        cat = "other" if depth == 0 else category(name, depth, labelled)
        fill = "rgb(200,200,200)" if depth == 0 else colour(name, cat)
        tip = f"{name} ({node.total} samples, {pct:.2f}%"
        if node.self_:
            tip += f"; self {node.self_}, {100.0 * node.self_ / total:.2f}%"
        tip += ")"
        w(f"<g><title>{html.escape(tip)}</title>"
          f'<rect x="{px:.1f}" y="{py}" width="{max(pw, 0.1):.1f}" height="{frame_h - 1}" rx="2" fill="{fill}"/>')
        max_chars = int((pw - 6) / char_w)
        if max_chars >= 3:
            inlined = name.endswith("_[i]")
            text = shorten(name[:-4] if inlined else name) if depth else f"all ({root.total} samples)"
            if len(text) > max_chars:
                text = text[: max_chars - 2] + ".."
            cls = ' class="i"' if inlined else ""
            w(f'<text{cls} x="{px + 3:.1f}" y="{py + frame_h - 4}">{html.escape(text)}</text>')
        w("</g>\n")
    w("</svg>\n")
    return out.getvalue()


# ------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------


def is_generic(name: str) -> bool:
    """Runtime plumbing, kernel or an inlined frame (whose name says too little to judge)."""
    if name.endswith(("_[k]", "_[i]")) or name in GENERIC_SYMBOLS or name.startswith("{{closure}}"):
        return True
    m = BARE_SELF_RE.match(name) or PATH_START_RE.match(name)
    return bool(m and m.group(1) in GENERIC_CRATES)


def summarise(folded: dict[str, int], top: int = 15, labelled: set[str] | None = None) -> str:
    labelled = labelled or set()
    total = sum(folded.values()) or 1
    per_root: dict[str, int] = defaultdict(int)
    inclusive: dict[str, int] = defaultdict(int)
    self_: dict[str, int] = defaultdict(int)
    inclusive_by_root: dict[tuple[str, str], int] = defaultdict(int)
    # Self time of inlined leaves given to the innermost frame that is a real (not inlined) function.
    self_real: dict[str, int] = defaultdict(int)
    for stack, count in folded.items():
        frames = stack.split(";")
        root = frames[0] if frames[0] in labelled else None
        if root:
            per_root[root] += count
            frames = frames[1:]
        for f in set(frames):  # once per stack, so recursion does not count twice
            inclusive[f] += count
            if root:
                inclusive_by_root[(root, f)] += count
        if frames:
            self_[frames[-1]] += count
            real = next((f for f in reversed(frames) if not f.endswith("_[i]")), frames[-1])
            self_real[real] += count
    lines = [f"total samples: {total}"]
    for r in sorted(per_root, key=per_root.get, reverse=True):
        lines.append(f"  {r:<20} {per_root[r]:>8}  {100.0 * per_root[r] / total:6.2f}%")

    def table(title, items, note=""):
        lines.append("")
        lines.append(title + (f" ({note})" if note else ""))
        for name, count in items:
            lines.append(f"  {100.0 * count / total:6.2f}%  {count:>7}  {shorten(name)}")

    shown = [(n, c) for n, c in sorted(inclusive.items(), key=lambda kv: -kv[1]) if not is_generic(n)]
    cut = shown[top - 1][1] if len(shown) >= top else 0
    hidden = sum(1 for n, c in inclusive.items() if is_generic(n) and c >= cut)
    table("heaviest frames by inclusive % (of all samples)", shown[:top],
          f"{hidden} frames as heavy hidden: runtime plumbing (tokio, futures, hyper, tonic, tower, std, core, "
          "alloc), kernel and inlined frames")
    if per_root:
        for r in sorted(per_root, key=per_root.get, reverse=True):
            items = sorted(((f, c) for (rr, f), c in inclusive_by_root.items() if rr == r and not is_generic(f)),
                           key=lambda kv: -kv[1])
            table(f"heaviest frames in {r} by inclusive % (of all samples)", items[:top])
    table("heaviest frames by self % (leaf frames, nothing hidden)",
          sorted(self_.items(), key=lambda kv: -kv[1])[:top])
    table("heaviest functions by self % with their inlined callees folded in (nothing hidden)",
          sorted(self_real.items(), key=lambda kv: -kv[1])[:top])
    return "\n".join(lines) + "\n"


def is_libc_internal(name: str) -> bool:
    """Allocator and libc helpers (malloc -> _int_malloc, realloc -> memcpy): never the caller we want."""
    return frame_crate(name) is None and name.startswith(("_", "malloc", "realloc", "free", "cfree", "calloc"))


def callers(folded: dict[str, int], needle: str, top: int = 10) -> str:
    """Where the samples of frames whose name contains `needle` come from: the nearest caller
    that is neither runtime plumbing nor inlined, and how many samples each accounts for."""
    total = sum(folded.values()) or 1
    hits: dict[str, int] = defaultdict(int)
    by_caller: dict[str, int] = defaultdict(int)
    for stack, count in folded.items():
        frames = stack.split(";")
        idx = next((i for i in range(len(frames) - 1, -1, -1) if needle in frames[i]), None)
        if idx is None:
            continue
        hits[frames[idx]] += count
        caller = next((f for f in reversed(frames[:idx]) if not is_generic(f) and not is_libc_internal(f)), "(none)")
        by_caller[caller] += count
    n = sum(hits.values())
    lines = [f"frames containing {needle!r}: {n} samples, {100.0 * n / total:.2f}% of all"]
    for name, count in sorted(by_caller.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100.0 * count / total:6.2f}%  {count:>7}  from {shorten(name)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# Self-test
# ------------------------------------------------------------------------------------------

SAMPLE = """\
hypnos 100/101 [000] 1.000001:    1001001 cpu-clock:pppH:
\t    55d4aa01 hypnos_tsdb::chunk::XorIterator::next+0x12 (/tmp/hypnos)
\t    55d4aa02 hypnos_promql::eval::rate<alloc::vec::Vec<f64>>+0x40 (/tmp/hypnos)
\t    55d4aa03 tokio::runtime::task::harness::Harness<T,S>::poll::h0123456789abcdef+0x1 (/tmp/hypnos)
\t    55d4aa04 start_thread+0x2 (/usr/lib/x86_64-linux-gnu/libc.so.6)

hypnos 100/102 [001] 1.001001:    1001001 cpu-clock:pppH:
\tffffffff8100 do_syscall_64+0x71 ([kernel.kallsyms])
\t    55d4aa05 __GI___libc_read+0x3 (inlined)
\t    55d4aa05 __GI___libc_read+0x3 (inlined)
\t    55d4aa03 tokio::runtime::task::harness::Harness<T,S>::poll::h0123456789abcdef+0x1 (/tmp/hypnos)
\t    55d4aa04 start_thread+0x2 (/usr/lib/x86_64-linux-gnu/libc.so.6)

tokio-runtime-w 200/201 [001] 1.002001:    1001001 cpu-clock:pppH:
\t    55d4bb00 with<core::cell::Cell<(u8, ())>> (inlined)
\t    55d4bb01 <hypnos_query::Api as core::ops::Fn<(A,)>>::call+0x7 (/tmp/hypnos)
\t    55d4bb02 [unknown] (/tmp/hypnos)

hypnos 100/101 [000] 1.003001:    1001001 cpu-clock:pppH:
\t    55d4aa01 hypnos_tsdb::chunk::XorIterator::next+0x12 (/tmp/hypnos)
\t    55d4aa02 hypnos_promql::eval::rate<alloc::vec::Vec<f64>>+0x40 (/tmp/hypnos)
\t    55d4aa03 tokio::runtime::task::harness::Harness<T,S>::poll::h0123456789abcdef+0x1 (/tmp/hypnos)
\t    55d4aa04 start_thread+0x2 (/usr/lib/x86_64-linux-gnu/libc.so.6)
"""


def self_test() -> int:
    folded = fold_perf_script(SAMPLE.splitlines(True), labels={100: "store", 200: "querier"})
    expected = {
        "store;start_thread;tokio::runtime::task::harness::Harness<T,S>::poll;"
        "hypnos_promql::eval::rate<alloc::vec::Vec<f64>>;hypnos_tsdb::chunk::XorIterator::next": 2,
        "store;start_thread;tokio::runtime::task::harness::Harness<T,S>::poll;__GI___libc_read_[i];"
        "do_syscall_64_[k]": 1,
        "querier;[hypnos];<hypnos_query::Api as core::ops::Fn<(A,)>>::call;with<core::cell::Cell<(u8, ())>>_[i]": 1,
    }
    failures = []
    if folded != expected:
        failures.append(f"folded stacks differ:\n got {folded}\nwant {expected}")
    unlabelled = fold_perf_script(SAMPLE.splitlines(True), per_process=True)
    if sorted(s.split(";")[0] for s in unlabelled) != ["hypnos", "hypnos", "tokio-runtime-w"]:
        failures.append(f"--per-process roots wrong: {sorted(unlabelled)}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("t.folded", "t.folded.gz"):
            with open_text(f"{tmp}/{name}", "w") as f:
                write_folded(folded, f)
            with open_text(f"{tmp}/{name}", "r") as f:
                if read_folded(f) != folded:
                    failures.append(f"{name} does not read back to the same stacks")
    for name, want in (
        ("hypnos_promql::eval::rate<alloc::vec::Vec<f64>>", "hypnos_promql::eval::rate<…>"),
        ("<hypnos_query::Api as core::ops::Fn<(A,)>>::call", "<hypnos_query::Api as core::ops::Fn<…>>::call"),
        ("core::ptr::drop_in_place<Box<dyn Fn() -> u8>>", "core::ptr::drop_in_place<…>"),
        ("alloc::vec::Vec<T,A>::push", "alloc::vec::Vec<…>::push"),
        ("foo::bar::<u8>", "foo::bar<…>"),
    ):
        if shorten(name) != want:
            failures.append(f"shorten({name!r}) = {shorten(name)!r}, want {want!r}")
    svg = render_svg(folded, "self-test", labelled={"store", "querier"})
    if category("<hypnos_query::Api as core::ops::Fn<(A,)>>::call", 3, set()) != "hypnos" or \
            category("{closure#0}<hypnos_tsdb::X>_[i]", 3, set()) != "nopath" or \
            category("<F as tokio::X>::poll", 3, set()) != "crate" or category("store", 1, {"store"}) != "process":
        failures.append("frame categories (colours) wrong")
    if svg.count("<rect") < 8 or "75.00%" not in svg or "store (3 samples, 75.00%)" not in svg:
        failures.append("SVG lacks the expected frames or titles")
    if "hypnos_promql::eval::rate&lt;alloc::vec::Vec&lt;f64&gt;&gt; (2 samples, 50.00%" not in svg:
        failures.append("SVG title does not keep the full (escaped) name")
    summary = summarise(folded, labelled={"store", "querier"})
    if "store" not in summary or " 75.00%" not in summary or "hypnos_tsdb::chunk::XorIterator::next" not in summary:
        failures.append(f"summary unexpected:\n{summary}")
    if "Harness" in summary.split("heaviest frames by self")[0] or "libc_read" in summary:
        failures.append("generic tokio or inlined frame not hidden from the inclusive list")
    for name, want in (("tokio::runtime::park", True), ("<hyper_util::Oneshot<S> as core::Future>::poll", True),
                       ("<hypnos_store::Series as prost::Message>::merge", False), ("prost::encoding::merge", False),
                       ("run_[i]", True), ("do_syscall_64_[k]", True), ("hypnos_tsdb::x::{{closure}}", False),
                       ("<F as axum::handler::Handler<T>>::call::{{closure}}", True),
                       ("<T as futures_util::fns::FnMut1<A>>::call_mut", True)):
        if is_generic(name) != want:
            failures.append(f"is_generic({name!r}) != {want}")
    c = callers(folded, "do_syscall_64")
    if "25.00%" not in c or "from tokio::runtime::task::harness::Harness<…>::poll" in c:
        failures.append(f"callers() unexpected:\n{c}")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    print(f"self-test: {'1 passed, 0 failed' if not failures else '0 passed, 1 failed'}")
    return 1 if failures else 0


# ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: perf script -i perf.data | bench/flamegraph.py --label 123=store "
                                        "--folded out.folded --svg out.svg")
    ap.add_argument("input", nargs="?", default="-", help="perf script text (or folded stacks with --from-folded); "
                    "'-' or absent: stdin")
    ap.add_argument("--from-folded", action="store_true", help="the input is folded stacks, not perf script text")
    ap.add_argument("--folded", metavar="FILE",
                    help="write the folded stacks here (gzip-compressed if FILE ends in .gz; "
                    "input files ending in .gz are read the same way)")
    ap.add_argument("--svg", metavar="FILE", help="write the SVG flamegraph here")
    ap.add_argument("--summary", metavar="FILE", help="write the text summary here")
    ap.add_argument("--title", default="Flame graph", help="title line of the SVG")
    ap.add_argument("--subtitle", default="", help="second line of the SVG (e.g. the query)")
    ap.add_argument("--label", action="append", default=[], metavar="PID=NAME",
                    help="root frame NAME for the samples of process PID (repeatable)")
    ap.add_argument("--per-process", action="store_true",
                    help="root frame = command name for processes without a --label (with --from-folded: "
                    "the root frames are processes)")
    ap.add_argument("--period", action="store_true", help="weigh samples by their period instead of 1 each")
    ap.add_argument("--min-width", type=float, default=0.1, metavar="PCT",
                    help="drop frames narrower than PCT %% of all samples from the SVG (default 0.1)")
    ap.add_argument("--width", type=int, default=1200, help="SVG width in pixels (default 1200)")
    ap.add_argument("--top", type=int, default=15, help="rows per summary table (default 15)")
    ap.add_argument("--callers", action="append", default=[], metavar="TEXT",
                    help="also print where the frames whose name contains TEXT are called from (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print the summary")
    ap.add_argument("--self-test", action="store_true", help="fold an embedded sample, check the result, exit")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    labels = {}
    for spec in args.label:
        pid, sep, name = spec.partition("=")
        if not sep or not pid.isdigit() or not name:
            ap.error(f"--label wants PID=NAME, got {spec!r}")
        labels[int(pid)] = name
    src = sys.stdin if args.input == "-" else open_text(args.input, "r")
    with src:
        folded = read_folded(src) if args.from_folded else fold_perf_script(src, labels, args.per_process, args.period)
    if not folded:
        print("no samples found in the input", file=sys.stderr)
        return 1
    labelled = set(labels.values())
    if args.from_folded and args.per_process:  # folded input: the root frames are the processes
        labelled |= {s.split(";")[0] for s in folded}
    if args.folded:
        with open_text(args.folded, "w") as f:
            write_folded(folded, f)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(render_svg(folded, args.title, args.subtitle, args.width, args.min_width, labelled))
    summary = summarise(folded, args.top, labelled)
    for needle in args.callers:
        summary += "\n" + callers(folded, needle, args.top)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(summary)
    if not args.quiet:
        sys.stdout.write(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
