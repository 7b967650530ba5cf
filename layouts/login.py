"""The login page and the "refused" page: plain HTML forms (no JavaScript needed)."""
from __future__ import annotations

from html import escape
from urllib.parse import quote

from layouts.i18n import t



def _page(lang: str, title: str, body: str) -> str:
    return (f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f'<link rel="stylesheet" href="/assets/login.css"></head><body class="login-page"><main>{body}</main></body></html>')


def login_page(lang: str, csrf: str, nxt: str, error: str | None = None) -> str:
    other = "en" if lang != "en" else "zh-CN"
    problem = f'<div class="error" role="alert">{escape(t("login_" + error, lang))}</div>' if error else ""
    return _page(lang, t("login_title", lang), f"""<h1>{escape(t("login_title", lang))}</h1>{problem}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{escape(csrf)}"><input type="hidden" name="next" value="{escape(nxt)}">
<input type="hidden" name="lang" value="{escape(lang)}">
<label for="username">{escape(t("login_username", lang))}</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">{escape(t("login_password", lang))}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">{escape(t("login_submit", lang))}</button></form>
<div class="lang"><a href="/login?lang={other}&amp;next={escape(quote(nxt, safe='/'))}">{escape(t("login_other_lang", lang))}</a></div>""")


def refused_page(lang: str, why: str) -> str:
    return _page(lang, t("refused_title", lang), f'<h1>{escape(t("refused_title", lang))}</h1>'
                 f'<p>{escape(t("refused_" + why, lang))}</p>')
