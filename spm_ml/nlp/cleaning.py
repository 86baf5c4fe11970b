"""Turn a raw email body into the text a sentiment model should read.

Sentiment belongs to what the sender wrote in *this* message, so quoted replies, signatures,
legal footers, URLs and addresses are removed before tokenisation: they would otherwise let
an old complaint in a quoted thread, or a cheerful boilerplate footer, decide the score.
The functions are pure and cheap (regular expressions, no model), so the same cleaning runs
in training, batch scoring and the service.
"""

from __future__ import annotations

import html
import re

__all__ = ["MAX_CHARS", "clean_email", "decode_text", "strip_html"]

MAX_CHARS = 20_000
"""Cleaned text is cut to this many characters: the opening of a long email carries its
sentiment, and a bound keeps a 1 MB paste from stalling a batch."""

_HTML_HINT = re.compile(r"<\s*(html|body|div|p|br|span|table|td|tr|font|a|b|i|ul|li)\b", re.I)
_HTML_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_HTML_BLOCK = re.compile(r"<\s*/?\s*(br|p|div|tr|li|h[1-6]|table|blockquote)\b[^>]*>", re.I)
_HTML_QUOTE = re.compile(r"<blockquote\b.*?</blockquote\s*>", re.I | re.S)
_HTML_TAG = re.compile(r"<[^>]{0,2000}>", re.S)

# Everything from the first reply/forward header on is someone else's (older) text.
_REPLY_HEADERS = re.compile(
    r"(^|\n)[ \t]*("
    r"On\b[^\n]{0,300}?\bwrote:"  # On Mon, 3 Jun 2024, Ann <a@b.c> wrote:
    r"|On\b[^\n]{0,200}\n[^\n]{0,200}\bwrote:"  # the same header wrapped over two lines
    r"|-{2,}\s*Original Message\s*-{2,}"
    r"|-{2,}\s*Forwarded message\s*-{2,}"
    r"|Begin forwarded message:"
    r"|From:[^\n]*\n(?:[^\n]*\n){0,3}?\s*(Sent|Date):"
    r"|_{10,}"  # Outlook's rule above the quoted header
    r")",
    re.I,
)
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.M)

# A signature starts at the RFC 3676 delimiter or at a valediction on its own line.
_SIG_DELIMITER = re.compile(r"(^|\n)-- ?\n")
_VALEDICTION = re.compile(
    r"^[ \t]*(best( regards| wishes)?|kind regards|warm regards|regards|many thanks|thanks"
    r"( again| so much)?|thank you|cheers|sincerely|yours( truly| sincerely)?|all the best"
    r"|talk soon|br|rgds|sent from my \w+)[ \t]*[,.!]?[ \t]*$",
    re.I | re.M,
)
_SIG_MAX_LINES = 8
# Closings that say nothing about the deal; a text that *starts* with one is only a signature
# (unlike "Thanks!", which is a message in itself).
_CLOSING_ONLY = re.compile(
    r"^[ \t]*(best( regards| wishes)?|kind regards|warm regards|regards|cheers|sincerely"
    r"|yours( truly| sincerely)?|all the best|talk soon|br|rgds|sent from my \w+)"
    r"[ \t]*[,.!]?[ \t]*$",
    re.I,
)

_FOOTER = re.compile(
    r"(^|\n)[^\n]*("
    r"this (e-?mail|message|communication)( and any (attachments?|files))?"
    r" (is|are|may be|contains?)[^\n]*(confidential|privileged|intended)"
    r"|confidentiality notice|disclaimer:|privileged and confidential"
    r"|if you (are not|have received this)[^\n]*(intended recipient|in error)"
    r"|to unsubscribe|unsubscribe from|manage (your )?(email )?preferences"
    r"|please consider the environment before printing"
    r")",
    re.I,
)

# A salutation line ("Hi Sam,") carries no sentiment but would be scored as a sentence.
_SALUTATION = re.compile(
    r"\A[ \t]*(hi|hello|hey|dear|greetings|good (morning|afternoon|evening))\b[^\n]{0,40}\n",
    re.I,
)
_URL = re.compile(r"(https?://|ftp://|www\.)\S+", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_MENTION = re.compile(r"(?<![\w@])@\w{1,30}")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_text(raw: str | bytes | None) -> str:
    """Return ``raw`` as text, replacing undecodable bytes instead of failing.

    Mail exports mix encodings; one bad byte must not stop a batch, and the replacement
    character carries no sentiment.
    """
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):  # NaN from pandas, numbers from a spreadsheet
        return "" if raw != raw else str(raw)
    return raw


def strip_html(text: str) -> str:
    """Reduce an HTML body to its visible text, keeping block breaks as newlines.

    ``<blockquote>`` is dropped with its content because mail clients put quoted replies
    there.
    """
    text = _HTML_DROP.sub(" ", text)
    text = _HTML_QUOTE.sub("\n", text)
    text = _HTML_BLOCK.sub("\n", text)
    text = _HTML_TAG.sub(" ", text)
    return html.unescape(text)


def _cut_signature(text: str) -> str:
    delimiter = _SIG_DELIMITER.search(text)
    if delimiter:
        text = text[: delimiter.start()]
    lines = text.split("\n")
    # Only a valediction near the end starts a signature: "Thanks" mid-email is content.
    # A text that opens with a bare closing ("Best regards," then a name and a title) is a
    # signature alone: nothing is left to judge, and the scorer abstains.
    for index in range(max(0, len(lines) - _SIG_MAX_LINES), len(lines)):
        if index > 0 and _VALEDICTION.match(lines[index]):
            return "\n".join(lines[:index])
        if index == 0 and _CLOSING_ONLY.match(lines[0]):
            return ""
    return text


def clean_email(raw: str | bytes | None, max_chars: int = MAX_CHARS) -> str:
    """Return the sender's own words from a raw email body.

    Steps, in order: decode (bad bytes replaced), strip HTML when the body looks like HTML,
    cut at the first quoted-reply or forward header, drop ``>`` lines, cut the signature and
    legal footers, drop a salutation line, remove URLs, email addresses and @mentions,
    normalise whitespace, and cut to ``max_chars`` characters.

    Examples
    --------
    >>> clean_email("Sounds good.\\n\\nOn Mon, Ann <ann@x.com> wrote:\\n> We cancel.")
    'Sounds good.'
    """
    text = decode_text(raw)
    if not text:
        return ""
    # Bound the work first: regexes over a 1 MB paste are wasted effort.
    text = text[: max_chars * 5]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    if _HTML_HINT.search(text):
        text = strip_html(text)
    header = _REPLY_HEADERS.search(text)
    if header and header.start() > 0:
        text = text[: header.start()]
    elif header:  # a forward with nothing written above it: keep the forwarded body
        text = text[header.end() :]
    text = _QUOTED_LINE.sub("", text)
    footer = _FOOTER.search(text)
    if footer:
        text = text[: footer.start()]
    text = _cut_signature(text.strip())
    text = _SALUTATION.sub("", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    # Lines are joined by a blank line: spaCy's tokenizer runs ~5x slower on texts with
    # lone "\n" tokens (measured with spaCy 3.8), and a break is a break either way.
    text = "\n\n".join(line.strip() for line in text.split("\n"))
    return text.strip()[:max_chars]
