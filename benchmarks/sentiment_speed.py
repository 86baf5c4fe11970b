"""Batch-scoring throughput of the default sentiment model: emails of 120 words per second.

Emails are assembled deterministically from the shipped sales and business sentences (120
words each, a few with a quoted reply and a signature, as real threads have).  Reported: the
median of 5 runs of ``score_batches`` over N emails, with 1 process and with 2 worker
processes, plus VADER alone on the same emails as a reference; the three take turns within
every run.

Usage::

    python benchmarks/sentiment_speed.py [--n 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time

from spm_ml.nlp.corpus import labelled_sentences
from spm_ml.nlp.default_model import load_default_model
from spm_ml.nlp.lexicon import vader_compound


def make_emails(n: int, words: int = 120, seed: int = 0) -> list[str]:
    texts, _, groups = labelled_sentences()
    texts = [t for t, g in zip(texts, groups, strict=True) if g != "opinion_sentences"]
    rng = random.Random(seed)
    emails = []
    for i in range(n):
        body: list[str] = []
        while len(body) < words:
            body += rng.choice(texts).split()
        text = "Hi Sam,\n\n" + " ".join(body[:words])
        if i % 4 == 0:
            text += "\n\nBest regards,\nJo Smith\nAccount Executive"
            text += "\n\nOn Mon, Jun 3, 2024 at 9:14 AM Sam <sam@example.com> wrote:\n> Any news?"
        emails.append(text)
    return emails


def median_rates(fns: list, n: int, runs: int) -> list[float]:
    """Median rate of each function; the functions take turns in every run, so a change of
    load on a shared machine hits them alike."""
    rates: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, rates, strict=True):
            start = time.perf_counter()
            fn()
            out.append(n / (time.perf_counter() - start))
    return [statistics.median(r) for r in rates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()

    model = load_default_model()
    emails = make_emails(args.n)
    model.score(emails[:50])  # warm-up (lazy lexicon, caches)
    one, vader, two = median_rates(
        [
            lambda: model.score_batches(emails, batch_size=args.batch_size),
            lambda: [vader_compound(e) for e in emails],
            lambda: model.score_batches(emails, batch_size=args.batch_size, n_process=2),
        ],
        args.n,
        args.runs,
    )
    print(
        f"# sentiment batch scoring, {args.n} emails x 120 words, median of {args.runs} runs, "
        f"{os.cpu_count()} cores"
    )
    print("| what | emails/s |")
    print("| --- | ---: |")
    print(f"| default model, 1 process | {one:,.0f} |")
    print(f"| default model, 2 processes | {two:,.0f} |")
    print(f"| VADER alone (reference), 1 process | {vader:,.0f} |")
    print(
        json.dumps(
            {
                "emails_per_s_1proc": round(one),
                "emails_per_s_2proc": round(two),
                "vader_emails_per_s": round(vader),
                "n": args.n,
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    main()
