# Over 400 lines on purpose: the MOVES table and its notes are a third; deleted after the move.
"""Regroup medview/core/ by domain and medview/dicom/ by stage (issue 16), by script.

The move is a table (:data:`MOVES`: old dotted module → new dotted module) and this script
carries it out on a clean git checkout:

1. ``git mv`` every module of the table that is still at its old place (creating the
   packages, each with an ``__init__.py`` that exports the public names of its modules
   lazily, as scikit-image does, so ``import medview.core`` stays light);
2. rewrites every reference to a moved module in medview/, tests/, benchmarks/, phantoms/,
   packaging/, scripts/, docs/, README.md and pyproject.toml: dotted names (imports,
   ``import x.y as z``, mock and monkeypatch strings, logger names, ``python -m`` targets),
   ``from medview.core import smoothing`` forms, relative Sphinx references
   (``:mod:`._catalog_index```) and file paths (``medview/dicom/_sandbox.py``);
3. sorts the imports it touched (``ruff check --fix --select I``).

Only moves still pending are applied, so a second run does nothing, and entries added to the
table later are applied by running it again. Modules of medview/core/ and medview/dicom/ the
table does not know (added by other branches meanwhile) are listed as "unplaced" and left
where they are: add them to the table and run again.

Usage: ``python scripts/relayout.py [--dry-run] [--ruff PATH]`` from the repository root
(or from anywhere: it works on the repository it lives in).
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# -- the table ----------------------------------------------------------------------------
# core/: one folder per domain (scikit-image's layout). The data model every domain and every
# layer above uses -- volume, labelmap, table, progress, params, made_up, annotations -- stays
# at the top of core/: it is the vocabulary, not a feature, and `medview.core.volume.Volume` is
# the most imported name of the project; a `data/` folder would lengthen it without making
# anything easier to find.
_CORE = {
    # the checks every algorithm shares, and the per-slice thread pool
    "_shared": "_shared.checks",
    "parallel": "_shared.parallel",
    # filters: smoothing and denoising
    "smoothing": "filters.smoothing",
    "denoise": "filters.denoise",
    # exposure: contrast and histogram
    "enhance": "exposure.enhance",
    "histogram": "exposure.histogram",
    # features: edges, texture, measurements
    "features": "features.edges",
    "texture": "features.texture",
    "glcm": "features.glcm",
    "statistics": "features.statistics",
    # segmentation: thresholds, region growing/k-means, the scribble classifier and its files
    "thresholds": "segmentation.thresholds",
    "segmentation": "segmentation.intensity",
    "classifier": "segmentation.classifier",
    "fast_predict": "segmentation.fast_predict",
    "feature_stack": "segmentation.pixel_features",
    "model_file": "segmentation.model_file",
    "model_store": "segmentation.model_store",
    # morphology: label-map clean-up and connected components
    "morphology": "morphology.cleanup",
    "components": "morphology.components",
    # registration: onto another grid (resample, rigid), and sheared stacks onto a right grid
    "registration": "registration.rigid",
    "resample": "registration.resample",
    "geometry": "registration.oblique",
    # fusion: two series into one view
    "fusion": "fusion.blend",
    # reformat: other planes through a volume (oblique MPR, thick slabs, reference lines)
    "image_plane": "reformat.plane",
    "reformat": "reformat.oblique",
    "slab": "reformat.slab",
    "reference_lines": "reformat.reference_lines",
}

# dicom/: one folder per stage a file goes through, plus documents/ for the objects that are
# not images (SR, KO). errors.py (every stage raises them) and display.py (printable file
# names) stay at the top of dicom/.
_DICOM = {
    # scan: a file's header, read fast
    "scan": "scan.scanner",
    "header": "scan.header",
    "preamble": "scan.preamble",
    "dicomdir": "scan.dicomdir",
    "_fastparse": "scan._fastparse",
    "_scan_decode": "scan._decode",
    "_scan_checks": "scan._checks",
    "_scan_memo": "scan._memo",
    "_scan_pydicom": "scan._pydicom",
    "_scan_stream": "scan._stream",
    "_skeleton": "scan._skeleton",
    # catalog: the SQLite index of scanned files, and the files a command names
    "catalog": "catalog.db",
    "_catalog_index": "catalog._index",
    "_catalog_lookup": "catalog._lookup",
    "_catalog_schema": "catalog._schema",
    "_catalog_walk": "catalog._walk",
    "collect": "catalog.collect",
    # series: headers → a planned volume → a Volume (at once, progressively, as files arrive)
    "assemble": "series.assemble",
    "slices": "series.slices",
    "mosaic": "series.mosaic",
    "_slice_checks": "series._slice_checks",
    "_instance_checks": "series._instance_checks",
    "load": "series.loading",
    "progressive": "series.progressive",
    "arriving": "series.arriving",
    "read_seg": "series.seg",
    # pixels: stored values → physical values
    "pixels": "pixels.decoding",
    "read": "pixels.read",
    "palette": "pixels.palette",
    "_compressed": "pixels._compressed",
    "_pixel_layout": "pixels._layout",
    "_sandbox": "pixels._sandbox",
    "_stand_in": "pixels._stand_in",
    # export: derived series, SEG and secondary captures
    "export": "export.dispatch",
    "export_series": "export.series",
    "export_seg": "export.seg",
    "export_sc": "export.secondary_capture",
    "_export_common": "export._common",
    "_export_uids": "export._uids",
    # documents: what is not an image -- SR measurement reports, key object selections, and
    # the store that keeps a reader's annotations and key images beside the catalog
    "sr_annotations": "documents.sr_write",
    "sr_annotations_read": "documents.sr_read",
    "key_objects": "documents.key_objects",
    "annotation_store": "documents.store",
    "_catalog_documents": "catalog._documents",
    # (merged later) the one reader of a planned stack's slices
    "slice_reader": "pixels.slice_reader",
    "priors": "catalog.priors",
}

MOVES: dict[str, str] = {
    **{f"medview.core.{a}": f"medview.core.{b}" for a, b in _CORE.items()},
    **{f"medview.dicom.{a}": f"medview.dicom.{b}" for a, b in _DICOM.items()},
}

# modules that stay at the top of their package on purpose (not "unplaced")
STAY = {
    "medview.core.volume", "medview.core.labelmap", "medview.core.table",
    "medview.core.progress", "medview.core.params", "medview.core.made_up",
    "medview.core.annotations",
    "medview.dicom.errors", "medview.dicom.display",
}

# the docstring of each new package's __init__.py
PACKAGE_DOCS = {
    "medview.core._shared": "What every core algorithm shares: input checks, the per-slice "
                            "thread pool.",
    "medview.core.filters": "Filters: Gaussian, mean, kernel, bilateral and median smoothing, "
                            "curvature diffusion.",
    "medview.core.exposure": "Exposure: contrast stretch, histogram equalisation, CLAHE, "
                             "unsharp masking, gamma.",
    "medview.core.features": "Features: edges (Sobel, Canny), texture (Gabor, LBP, GLCM) and "
                             "gray-level statistics.",
    "medview.core.segmentation": "Segmentation: thresholds, region growing, k-means and the "
                                 "scribble classifier.",
    "medview.core.morphology": "Morphology: opening, closing, hole filling and connected "
                               "components of label maps.",
    "medview.core.registration": "Registration: resampling onto another grid, rigid "
                                 "registration, sheared stacks.",
    "medview.core.fusion": "Fusion: average, weighted and maximum fusion, colour blending.",
    "medview.core.reformat": "Reformatting: image planes, oblique MPR, thick-slab projections, "
                             "reference lines.",
    "medview.dicom.documents": "Documents: SR measurement reports and key object selections, "
                               "written, read back and stored.",
    "medview.dicom.scan": "Scan: one DICOM file's header, read fast, without decoding pixels.",
    "medview.dicom.catalog": "Catalog: the SQLite index of every scanned file, and the files a "
                             "command names.",
    "medview.dicom.series": "Series: headers → a planned volume → a Volume (at once, "
                            "progressively, as files arrive); SEG.",
    "medview.dicom.pixels": "Pixels: stored values decoded (sandboxed where codecs may crash) "
                            "into physical values.",
    "medview.dicom.export": "Export: derived series, DICOM SEG and secondary captures into "
                            "the source study.",
}

SCOPE_DIRS = ("medview", "tests", "benchmarks", "phantoms", "packaging", "scripts", "docs")
SCOPE_FILES = ("README.md", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".pyi", ".md", ".rst", ".txt", ".toml", ".cfg", ".ini", ".spec",
                 ".sh", ".yml", ".yaml"}
PARENTS = ("medview.core", "medview.dicom")


# -- helpers ------------------------------------------------------------------------------
def _path(module: str, root: Path = REPO) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout


def pending_moves() -> dict[str, str]:
    """The moves whose module is still at its old place (and not yet at its new one)."""
    todo = {}
    for old, new in MOVES.items():
        src, dst = _path(old), _path(new)
        if dst.exists():
            if src.exists() and not (src.parent / src.stem).is_dir():
                sys.exit(f"relayout: both {src.relative_to(REPO)} and {dst.relative_to(REPO)} "
                         "exist; merge them by hand first")
            continue
        if src.exists():
            todo[old] = new
    return todo


def unplaced() -> list[str]:
    """Modules directly under core/ and dicom/ that the table does not know."""
    out = []
    for parent in PARENTS:
        for f in sorted(_path(parent).with_suffix("").glob("*.py")):
            name = f"{parent}.{f.stem}"
            if f.stem != "__init__" and name not in MOVES and name not in STAY:
                out.append(name)
    return out


def scope_files() -> list[Path]:
    tracked = _git("ls-files", "-z", "--", *SCOPE_DIRS, *SCOPE_FILES).split("\0")
    me = Path(__file__).resolve()
    files = []
    for rel in tracked:
        if not rel:
            continue
        f = REPO / rel
        if f.suffix in TEXT_SUFFIXES and f.is_file() and f.resolve() != me:
            files.append(f)
    return files


# -- rewriting references -----------------------------------------------------------------
_NAME = r"[A-Za-z_]\w*"
_ALIAS = rf"{_NAME}(?:\s+as\s+{_NAME})?"
_FROM_PLAIN = re.compile(
    rf"(?<![\w.])from (?P<pkg>medview\.(?:core|dicom)) import "
    rf"(?P<names>{_ALIAS}(?:[ \t]*,[ \t]*{_ALIAS})*)", re.M)
_FROM_PAREN = re.compile(
    r"(?<![\w.])from (?P<pkg>medview\.(?:core|dicom)) import \((?P<names>[^)]*)\)",
    re.M)


def _parse_names(text: str) -> list[tuple[str, str | None]] | None:
    """``[(name, alias), ...]`` of an import list, or None if it is not one."""
    text = re.sub(r"#[^\n]*", "", text)
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(rf"({_NAME})(?:\s+as\s+({_NAME}))?", part)
        if not m:
            return None
        out.append((m[1], m[2]))
    return out


@cache
def _package_exports(package: str) -> set[str]:
    """Names ``package/__init__.py`` exports itself (``medview.dicom.load`` is a function)."""
    init = _path(package).with_suffix("") / "__init__.py"
    return set(public_names(init)) if init.exists() else set()


def _from_import(match: re.Match, moves: dict[str, str]) -> str:
    """``from medview.core import a, b as c`` with the moved modules among a, b split out:
    each becomes ``from <new package> import <new name> as <the name the code uses>``."""
    names = _parse_names(match["names"])
    if names is None:
        return match[0]
    pkg = match["pkg"]
    kept, lines = [], []
    for name, alias in names:
        new = moves.get(f"{pkg}.{name}")
        if new is None or name in _package_exports(pkg):
            kept.append(f"{name} as {alias}" if alias else name)
            continue
        parent, _, leaf = new.rpartition(".")
        used = alias or name
        lines.append(f"from {parent} import {leaf}" + (f" as {used}" if used != leaf else ""))
    if not lines:
        return match[0]
    if kept:
        lines.insert(0, f"from {pkg} import {', '.join(kept)}")
    # a statement of its own: one line each, indented alike; inside a string or after other
    # code on its line (a script for ``python -c``): one line, joined with "; "
    line_start = match.string.rfind("\n", 0, match.start()) + 1
    before = match.string[line_start:match.start()]
    return ("\n" + before).join(lines) if not before.strip() else "; ".join(lines)


def rewrite_text(text: str, moves: dict[str, str], *, own_package: str | None = None,
                 prose: bool = False) -> str:
    """``text`` with every reference to a module of ``moves`` pointing at its new place.

    ``own_package`` is the package the file itself lived in (for relative Sphinx references);
    ``prose`` (Markdown) also rewrites the short names the docs use (``dicom.load``).
    """
    if moves and prose:
        short = {o.removeprefix("medview."): n.removeprefix("medview.") for o, n in moves.items()}
        alt = "|".join(re.escape(o) for o in sorted(short, key=len, reverse=True))
        text = re.sub(rf"(?<![\w.])(?:{alt})(?![\w/])", lambda m: short[m[0]], text)
    if moves:
        # dotted names: longest first, and never a longer name's prefix (medview.dicom.read
        # must not touch medview.dicom.read_seg)
        alt = "|".join(re.escape(o) for o in sorted(moves, key=len, reverse=True))
        text = re.sub(rf"(?<![\w.])(?:{alt})(?!\w)", lambda m: moves[m[0]], text)
        # file paths: medview/core/x.py, and core/x.py, dicom/x.py as the docs write them
        paths = {}
        for old, new in moves.items():
            o, n = old.replace(".", "/") + ".py", new.replace(".", "/") + ".py"
            paths[o] = n
            paths[o.removeprefix("medview/")] = n.removeprefix("medview/")
        alt = "|".join(re.escape(o) for o in sorted(paths, key=len, reverse=True))
        text = re.sub(rf"(?<![\w/.])(?:{alt})(?!\w)", lambda m: paths[m[0]], text)
    if own_package:
        def relative(m: re.Match) -> str:
            new = moves.get(f"{own_package}.{m['mod']}")
            return f"{m['head']}~{new}{m['rest']}`" if new else m[0]

        text = re.sub(rf"(?P<head>:(?:mod|func|class|data|attr|meth|exc):`)~?\.(?P<mod>{_NAME})"
                      rf"(?P<rest>(?:\.{_NAME})*)`", relative, text)
    # last: what these write is already new and must not be rewritten again
    # (from medview.core import classifier -> from medview.core.segmentation import ...)
    text = _FROM_PAREN.sub(lambda m: _from_import(m, moves), text)
    return _FROM_PLAIN.sub(lambda m: _from_import(m, moves), text)


# -- lines the longer names pushed past the limit ------------------------------------------
LINE_LIMIT = 100  # ruff's line-length in pyproject.toml


# a line that starts a paragraph or a list item: words are not carried onto it
_PARAGRAPH_START = re.compile(
    r"\s*(?:[-*+] |\d+[.)] |:|\.\. |>>>|\"\"\"|\'\'\'|-{3,}|={3,}|\w[\w, ]* : |$)")


def _split_at(line: str, limit: int, lo: int) -> int | None:
    """Index of the last space in ``line[lo:limit]`` to break at, or None."""
    cut = line.rfind(" ", lo, limit)
    return cut if cut > lo else None


def wrap_long_lines(path: Path) -> list[int]:
    """Re-wrap lines over :data:`LINE_LIMIT` in docstrings, whole-line comments and string
    literals that stand alone on a line inside brackets (implicitly concatenated);
    return the numbers of the long lines it could not wrap."""
    import io
    import tokenize

    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not any(len(line) > LINE_LIMIT for line in lines):
        return []
    kinds: dict[int, str] = {}  # 0-based line -> "doc" | "comment" | "literal"
    prev = tokenize.NEWLINE
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            row, col = tok.start
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif tok.type == tokenize.COMMENT and not lines[row - 1][:col].strip():
                kinds[row - 1] = "comment"
            elif tok.type == tokenize.STRING:
                quote = tok.string.lstrip("rRbBuUfF")[:3]
                if quote in ('"""', "'''") and prev in (tokenize.NEWLINE, tokenize.INDENT,
                                                        tokenize.DEDENT, tokenize.NL):
                    for r in range(row - 1, tok.end[0]):  # every line of the docstring
                        kinds.setdefault(r, "doc")
                elif (depth > 0 and tok.start[0] == tok.end[0] and quote[:1] == '"'
                      and not lines[row - 1][:col].strip()
                      and lines[row - 1][tok.end[1]:].strip() in ("", ",", ")")
                      and tok.string[:1] not in "rRbB"):
                    kinds[row - 1] = "literal"
            if tok.type not in (tokenize.COMMENT, tokenize.NL):
                prev = tok.type
    except (tokenize.TokenError, SyntaxError):
        return [i + 1 for i, line in enumerate(lines) if len(line) > LINE_LIMIT]
    out: list[str] = []
    left: list[int] = []
    carry = ""  # words pushed off a prose line, to go in front of the next one
    carry_kind = carry_indent = ""
    for i, line in enumerate(lines):
        kind = kinds.get(i)
        indent = line[: len(line) - len(line.lstrip())]
        if carry:
            lead = f"{indent}# " if kind == "comment" else indent
            body = line[len(lead):]
            if (kind == carry_kind and line.startswith(lead) and body.strip()
                    and indent == carry_indent and not _PARAGRAPH_START.match(body)):
                line = f"{lead}{carry} {body}"
            else:
                out.append(f"{carry_indent}# {carry}" if carry_kind == "comment"
                           else carry_indent + carry)
            carry = ""
        if len(line) <= LINE_LIMIT or not kind:
            if len(line) > LINE_LIMIT:
                left.append(i + 1)
            out.append(line)
            continue
        if kind in ("comment", "doc"):
            lo = len(indent) + (2 if kind == "comment" else 0)
            cut = _split_at(line, LINE_LIMIT + 1, lo)
            if cut is None:
                left.append(i + 1)
                out.append(line)
                continue
            out.append(line[:cut])
            carry, carry_kind, carry_indent = line[cut + 1:], kind, indent
            continue
        # "literal": "text" -> "te" "xt", keeping its prefix (f)
        pieces = [line]
        while len(pieces[-1]) > LINE_LIMIT:
            last = pieces.pop()
            body = last.lstrip()
            prefix = body[: body.index('"')]
            cut = _split_at(last, LINE_LIMIT - 1, len(indent) + len(prefix) + 1)
            if cut is None or ("f" in prefix.lower()
                               and last[:cut].count("{") != last[:cut].count("}")):
                pieces.append(last)
                left.append(i + 1)
                break
            pieces += [last[: cut + 1] + '"', f"{indent}{prefix}\"{last[cut + 1:]}"]
        out += pieces
    if carry:
        out.append(carry_indent + carry)
    new = "\n".join(out)
    if new != text:
        path.write_text(new, encoding="utf-8")
        return left + wrap_long_lines(path)  # a line that took the carried words may be long
    return left


# -- package __init__ files ---------------------------------------------------------------
def public_names(path: Path) -> list[str]:
    """The names a module offers: its ``__all__``, else its public functions and classes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return [str(n) for n in ast.literal_eval(node.value)]
            except ValueError:
                break
    return [n.name for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and not n.name.startswith("_")]


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for n in tree.body:
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(n.name)
        elif isinstance(n, ast.Assign | ast.AnnAssign):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                if isinstance(t, ast.Name):
                    names.add(t.id)
    return names


_INIT = '''"""{doc}

Public names are imported lazily from the modules below (written by scripts/relayout.py).
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
{all}]

__getattr__, __dir__ = attach(__name__, {{
{lazy}}})
'''


def write_init(package: str, notes: list[str]) -> None:
    """(Re)write ``package``'s ``__init__.py`` exporting its public modules' public names."""
    folder = _path(package).with_suffix("")
    modules = sorted(f for f in folder.glob("*.py")
                     if not f.stem.startswith("_"))
    submodules = {f.stem for f in folder.glob("*.py")} | {
        d.name for d in folder.iterdir() if (d / "__init__.py").exists()}
    offered = {f: public_names(f) for f in modules}
    owner: dict[str, str] = {}
    # a name goes to the module that defines it (not to one that re-exports it), else to
    # the first module offering it
    for pass_ in ("defines", "offers"):
        for f in modules:
            defined = defined_names(f)
            for name in offered[f]:
                if name in owner or (pass_ == "defines" and name not in defined):
                    continue
                if name in submodules:
                    note = f"{package}: {name} not exported (a module has that name)"
                    if note not in notes:
                        notes.append(note)
                    continue
                owner[name] = f"{package}.{f.stem}"
    names = sorted(owner, key=str.lower)
    body = _INIT.format(
        doc=PACKAGE_DOCS.get(package, f"The {package.rsplit('.', 1)[1]} modules."),
        all="".join(f'    "{n}",\n' for n in names),
        lazy="".join(f'    "{n}": "{owner[n]}",\n' for n in names))
    init = folder / "__init__.py"
    init.write_text(body, encoding="utf-8")
    _git("add", str(init.relative_to(REPO)))


# -- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="say what would move, change nothing")
    ap.add_argument("--ruff", help="ruff executable for sorting imports (default: on PATH, "
                                   "then python -m ruff)")
    args = ap.parse_args(argv)

    moves = pending_moves()
    left = unplaced()
    if not moves:
        print("relayout: nothing to do (every module of the table is at its new place)")
        for name in left:
            print(f"unplaced: {name} (not in MOVES; left where it is)")
        return 0
    if not (REPO / "medview" / "_lazy.py").exists():
        sys.exit("relayout: medview/_lazy.py is missing (the new packages' __init__.py use it); "
                 "cherry-pick the relayout branch's commits before its script first")
    if _git("status", "--porcelain", "--untracked-files=no").strip() and not args.dry_run:
        sys.exit("relayout: the work tree has uncommitted changes; commit or stash them first")

    for old, new in moves.items():
        print(f"move {_path(old).relative_to(REPO)} -> {_path(new).relative_to(REPO)}")
    for name in left:
        print(f"unplaced: {name} (not in MOVES; left where it is)")
    if args.dry_run:
        return 0

    # 1. rewrite references first, while every file is at its old place
    old_package = {_path(o).resolve(): o.rpartition(".")[0] for o in moves}
    changed = []
    for f in scope_files():
        text = f.read_text(encoding="utf-8")
        new = rewrite_text(text, moves, own_package=old_package.get(f.resolve()),
                           prose=f.suffix in (".md", ".rst"))
        if new != text:
            f.write_text(new, encoding="utf-8")
            changed.append(f)
    # 2. move the files
    packages = set()
    for old, new in moves.items():
        dst = _path(new)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _git("mv", str(_path(old).relative_to(REPO)), str(dst.relative_to(REPO)))
        packages.add(new.rpartition(".")[0])
    # 3. each new package gets an __init__.py with lazy exports
    notes: list[str] = []
    for package in sorted(packages):
        write_init(package, notes)
        print(f"package {package}: __init__.py written")
    for note in notes:
        print(f"note: {note}")
    changed = [_path_after(f, moves) for f in changed]
    print(f"rewrote references in {len(changed)} files")
    for f in changed:
        if f.suffix == ".py":
            for n in wrap_long_lines(f):
                print(f"long line: {f.relative_to(REPO)}:{n} is over {LINE_LIMIT} characters "
                      "after the rewrite; wrap it by hand")
    # 4. sort the imports of the touched Python files (paths changed, so did their order)
    py = sorted({str(f.relative_to(REPO)) for f in changed if f.suffix == ".py" and f.exists()}
                | {str((_path(p).with_suffix("") / "__init__.py").relative_to(REPO))
                   for p in packages})
    ruff = [args.ruff] if args.ruff else ([shutil.which("ruff")] if shutil.which("ruff")
                                          else [sys.executable, "-m", "ruff"])
    res = subprocess.run([*ruff, "check", "--fix", "--select", "I,RUF022", "--quiet", *py],
                         cwd=REPO, capture_output=True, text=True)
    if res.returncode not in (0, 1) or "No module named ruff" in res.stderr:
        print("relayout: could not run ruff; sort the imports with "
              "`ruff check --fix --select I <files>`", file=sys.stderr)
    else:
        print(f"sorted imports in {len(py)} Python files (ruff)")
    _git("add", "--", *py, *(str(f.relative_to(REPO)) for f in changed))
    print("done: review with `git status`, then commit")
    return 0


def _path_after(f: Path, moves: dict[str, str]) -> Path:
    """Where file ``f`` is after the moves (itself when it did not move)."""
    for old, new in moves.items():
        if _path(old).resolve() == f.resolve():
            return _path(new).resolve()
    return f.resolve()


if __name__ == "__main__":
    raise SystemExit(main())
