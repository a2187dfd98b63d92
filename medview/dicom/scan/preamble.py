"""The 128-byte preamble of a DICOM file, and the executables that hide in it.

PS3.10 7.1 leaves the preamble to applications (TIFF headers are the intended use). An
executable header there makes the file a valid program as well as a valid image
(CVE-2019-11687: a Windows PE file that is also DICOM; ELF and Mach-O work the same way).
medview never runs a file, but one it passes on could be run elsewhere: the scan flags such
a preamble (a warning on the instance and its series), and everything medview writes is a
new data set whose preamble is 128 zero bytes (pydicom writes zeros when a data set has no
preamble), so a polyglot is never copied into an export.
"""

from __future__ import annotations

__all__ = ["executable_kind", "preamble_warning"]

# leading bytes → what they start
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows PE/DOS executable header ('MZ')"),
    (b"\x7fELF", "an ELF executable header (Linux/Unix)"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable header (macOS)"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable header (macOS)"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable header (macOS)"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable header (macOS)"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal binary (or Java class) header"),
    (b"#!", "a script interpreter line ('#!')"),
)


def executable_kind(preamble: bytes) -> str | None:
    """What executable format ``preamble`` starts, or None (zeros, TIFF, anything else)."""
    for magic, what in _MAGIC:
        if preamble.startswith(magic):
            return what
    return None


def preamble_warning(preamble: bytes | None) -> str | None:
    """The warning for a file whose preamble starts an executable, or None."""
    if not preamble:
        return None
    what = executable_kind(preamble)
    if what is None:
        return None
    return (f"the 128-byte preamble holds {what}: the file is also a program (the "
            "CVE-2019-11687 DICOM/executable polyglot); do not run it; medview's exports "
            "never copy a preamble")
