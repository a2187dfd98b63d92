"""Messages in the window speak the window's language, not the command line's (no Qt)."""

from __future__ import annotations

import pytest

from medview.app.messages import gui_text

CLI_WORDS = ("overwrite=True", "--force", "--series", "--ca-bundle", "series=UID")


@pytest.mark.parametrize("raw", [
    "/x/seg.dcm exists; pass overwrite=True (--force) to replace it",
    "would overwrite /x/a.nii.gz, /x/b.csv; use --force",
    "/x holds 2 series; name one with series=UID (--series on the command line):\n  1.2 #1",
    "https://h:1 is not trusted (bad cert); give its CA with --ca-bundle",
    "--ca-bundle /x/ca.pem: no such file",
])
def test_cli_wording_is_translated_and_the_facts_kept(raw):
    text = gui_text(raw)
    assert not any(word in text for word in CLI_WORDS), text
    assert "/x" in text or "https://h:1" in text  # the path or address stays
