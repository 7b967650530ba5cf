"""What a password must not be: short, one of the most common passwords (a bundled list,
datasource/data/common-passwords.txt, read at first use; no network), such a password
with digits or symbols around it, a run of one or two characters, a repeated pattern, a
sequence (1234567890, abcdefghij, qwertyuiop) or the user's own name."""
from __future__ import annotations

import re
from functools import lru_cache

from datasource.reference import DATA_DIR

MIN_LENGTH = 10
MIN_DISTINCT = 4
ADVICE = "choose a passphrase of a few unrelated words"
KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "l", "3": "e", "$": "s", "5": "s", "7": "t", "!": "i"})
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = (DATA_DIR / "common-passwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith("#"))


def _is_sequence(s: str) -> bool:
    if len({ord(b) - ord(a) for a, b in zip(s, s[1:])} - {0}) == 1 and \
            abs(ord(s[1]) - ord(s[0])) == 1:
        return True  # abcdef..., 987654...
    for row in KEYBOARD_ROWS:
        for line in (row, row[::-1]):
            if s in line * 3:  # runs that wrap around (7890123456)
                return True
    return False


def problem(password: str, username: str | None = None) -> str | None:
    """Why this password is refused, or None when it may be used."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    folded = "".join(password.casefold().split())
    if len(set(folded)) < MIN_DISTINCT:
        return f"password refused: it uses fewer than {MIN_DISTINCT} different characters; {ADVICE}"
    if folded in (folded + folded)[1:-1]:
        return f"password refused: it repeats a shorter pattern; {ADVICE}"
    if _is_sequence(folded):
        return f"password refused: it is a sequence of neighbouring characters or keys; {ADVICE}"
    common = common_passwords()
    if folded in common:
        return f"password refused: it is one of the most common passwords; {ADVICE}"
    core = _AROUND.sub("", folded)
    for candidate in {core, core.translate(LEET), folded.translate(LEET)}:
        if candidate in common or (candidate and _is_sequence(candidate) and len(candidate) >= 6):
            return f"password refused: it is a common password with a few characters changed or added; {ADVICE}"
    name = (username or "").casefold().strip()
    if len(name) >= 3 and name in folded:
        return f"password refused: it contains the user name; {ADVICE}"
    return None
