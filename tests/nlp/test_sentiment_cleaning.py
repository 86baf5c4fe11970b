"""Email cleaning: what the model must not read, and inputs that must not break it."""

from __future__ import annotations

import time

from spm_ml.nlp.cleaning import MAX_CHARS, clean_email, decode_text
from spm_ml.nlp.language import is_english


def test_quoted_reply_after_on_wrote_is_removed():
    raw = (
        "Sounds good, see you Tuesday.\n\n"
        "On Mon, Jun 3, 2024 at 9:14 AM Ann Lee <ann@acme.com> wrote:\n"
        "> We are cancelling the contract.\n> Regards"
    )
    assert clean_email(raw) == "Sounds good, see you Tuesday."


def test_wrapped_on_wrote_header_and_original_message_are_removed():
    raw = "Yes please.\nOn Mon, Jun 3, 2024 at 9:14 AM Ann Lee\n<ann@acme.com> wrote:\n> No."
    assert clean_email(raw) == "Yes please."
    raw = "Approved.\n-----Original Message-----\nFrom: Bob\nSent: Monday\nWe cancel."
    assert clean_email(raw) == "Approved."


def test_quoted_lines_signature_and_footer_are_removed():
    raw = (
        "We'd like to move forward.\n"
        "> old text that is quoted\n"
        "Best regards,\nJohn Smith\nVP Sales, Acme | +1 555 0100\n"
        "This email and any attachments are confidential and intended solely for the addressee."
    )
    assert clean_email(raw) == "We'd like to move forward."


def test_sig_delimiter_urls_and_addresses_are_removed():
    raw = "See the deck at https://x.io/deck and mail jo@acme.com today.\n-- \nJo\nwww.acme.com"
    cleaned = clean_email(raw)
    assert "http" not in cleaned and "@" not in cleaned and "Jo\n" not in cleaned
    assert cleaned.startswith("See the deck at")


def test_html_email_is_reduced_to_its_text():
    raw = (
        "<html><head><style>p{color:red}</style></head><body><p>We are <b>not</b> interested."
        "</p><blockquote>Earlier: we love it</blockquote><br>Thanks &amp; bye</body></html>"
    )
    cleaned = clean_email(raw)
    assert "We are not interested." in cleaned
    assert "<" not in cleaned and "color" not in cleaned and "love" not in cleaned


def test_non_utf8_bytes_are_replaced_not_fatal():
    raw = "Caf\xe9 meeting is fine".encode("latin-1")
    assert decode_text(raw).startswith("Caf")
    assert clean_email(raw).endswith("meeting is fine")


def test_empty_and_missing_text():
    assert clean_email("") == ""
    assert clean_email(None) == ""
    assert clean_email(float("nan")) == ""


def test_one_megabyte_text_is_bounded_and_fast():
    raw = "We are happy with the service. " * 35_000  # ~1 MB
    start = time.perf_counter()
    cleaned = clean_email(raw)
    assert len(cleaned) <= MAX_CHARS
    assert time.perf_counter() - start < 2.0


def test_language_flag():
    assert is_english("We have decided to go with another vendor this quarter.")
    assert is_english("Thanks!")
    assert not is_english("Nous avons décidé de travailler avec un autre fournisseur cette année.")
    assert not is_english("Wir haben uns für einen anderen Anbieter entschieden, danke sehr.")
    assert not is_english("弊社は別のベンダーを選びました。ご対応ありがとうございました。")
