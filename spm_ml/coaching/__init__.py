"""Coaching: turning a model's explanations into things a rep or manager can do.

``levers.py`` reads the one declarative catalogue (``catalogue.toml``): what each model
feature means in plain words and which actions (levers) change which features, by how much.
``deals.py`` ranks a deal's levers by the model's own re-scored probability (a what-if);
``reps.py`` does the same for a rep's quota (pipeline gap, deals worth rescuing).
"""
