"""Checks that a page's chrome is in one language: no Latin letter in a Chinese page's
bar, headings and labels, no Chinese character in an English page's."""
from __future__ import annotations

import re

LATIN = re.compile(r"[A-Za-z]+")
# CJK ideographs (and extensions), CJK punctuation, kana, full-width forms
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")


def foreign(text: str, lang: str) -> list[str]:
    """The runs of `text` in the other language than `lang` (empty when the text is pure)."""
    return (CJK if lang == "en" else LATIN).findall(text)


def chrome_text(page, selector: str, skip: str | None = None) -> str:
    """What a person reads of the elements `selector` matches: their visible text and
    their title and aria-label attributes, without the elements `skip` matches (data, e.g.
    a user's name)."""
    return page.evaluate(
        """([selector, skip]) => Array.from(document.querySelectorAll(selector)).map(root => {
            const copy = root.cloneNode(true);
            if (skip) copy.querySelectorAll(skip).forEach(e => e.remove());
            const attrs = Array.from(copy.querySelectorAll('[title], [aria-label]'))
                .concat(copy.matches('[title], [aria-label]') ? [copy] : [])
                .map(e => (e.getAttribute('title') || '') + ' ' + (e.getAttribute('aria-label') || ''));
            document.body.appendChild(copy);  // innerText needs the copy laid out
            const text = copy.innerText;
            copy.remove();
            return text + ' ' + attrs.join(' ');
        }).join('\\n')""", [selector, skip])
