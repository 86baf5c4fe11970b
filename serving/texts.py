"""Email text posted to the service, turned into tone scores at once and dropped."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from serving.schemas import EmailIn


def score_texts(emails: Sequence[EmailIn], sentiment) -> None:
    """Give each email that carries text its tone scores, and drop the text.

    All texts are scored in one call of ``sentiment`` (the model the deal model was trained
    with; ``None``: the deal model reads no tone, and the text is dropped unscored).
    Nothing of the text is kept or logged.
    """
    with_text = [e for e in emails if e.has_text]
    if not with_text:
        return
    if sentiment is not None:
        from spm_ml.nlp.signals import email_texts

        frame = pd.DataFrame(
            {"subject": [e.subject for e in with_text], "body": [e.body for e in with_text]}
        )
        scores = sentiment.score(email_texts(frame))
        for email, (_, row) in zip(with_text, scores.iterrows(), strict=True):
            for column in ("p_negative", "p_neutral", "p_positive"):
                value = row[column]
                setattr(email, column, None if pd.isna(value) else float(value))
    for email in with_text:
        email.subject = email.body = None
