"""Sentence and subject templates for simulated sales emails, by direction and tone.

Data, not logic.  Fields in braces are filled per email: ``c_first`` (contact first name),
``r_first`` (rep first name), ``company``, ``product``, ``amount``, ``date``, ``weekday``,
``competitor``, ``quarter``.  Tone classes: 0 negative, 1 neutral, 2 positive.  Negative
inbound wording covers pricing push-back, competitors, frozen budgets, lost interest and
delay; neutral covers logistics, procurement, legal and questions; positive covers interest,
scheduling and approval.
"""

from __future__ import annotations

SUBJECTS: dict[tuple[bool, int], tuple[str, ...]] = {
    (True, 2): (
        "Next steps with {company}",
        "Great call today",
        "Approved: {product} for {company}",
        "Let's schedule the rollout",
        "{product} - we're in",
        "Signed order form",
    ),
    (True, 1): (
        "{product} pricing",
        "Security questionnaire",
        "Procurement paperwork for {company}",
        "Question about {product}",
        "Contract redlines",
        "Invoice details",
        "Meeting time",
    ),
    (True, 0): (
        "{product} proposal",
        "Budget update",
        "Change of plans",
        "Decision on {product}",
        "Pricing",
        "Update from {company}",
    ),
    (False, 2): (
        "Great speaking with you, {c_first}",
        "Recap and next steps",
        "{product} demo recap",
        "Excited to work with {company}",
    ),
    (False, 1): (
        "Following up",
        "Checking in",
        "{product} proposal for {company}",
        "Meeting invite: {product} walkthrough",
        "Quick question",
        "Agenda for {weekday}",
    ),
    (False, 0): (
        "Closing the loop",
        "Sorry to hear that",
        "Should I close your file?",
    ),
}

SENTENCES: dict[tuple[bool, int], tuple[str, ...]] = {
    (True, 2): (
        "Thanks for the demo, the team was really impressed with {product}.",
        "We'd love to move forward with the proposal.",
        "Our CFO approved the budget for {product} this morning.",
        "Could we set up a call on {weekday} to talk about next steps?",
        "The pilot results look great and everyone is on board.",
        "Happy to confirm we want to go ahead at {amount}.",
        "I shared the deck with our leadership and they loved it.",
        "Let's get the kickoff on the calendar for {date}.",
        "This is exactly what we were looking for.",
        "We're excited to roll {product} out across {company}.",
        "Signed order form is attached, looking forward to working together!",
        "Great news: legal signed off on the agreement.",
        "The team is keen to get started as soon as possible.",
    ),
    (True, 1): (
        "Can you send over the security questionnaire and your SOC 2 report?",
        "Our procurement team will need a W-9 and your banking details.",
        "Legal has a few redlines on the MSA, I'll forward them shortly.",
        "Could you clarify how {product} handles user provisioning?",
        "I'm out of office until {date}, back after that.",
        "Please loop in our IT lead, she will review the integration.",
        "What does the implementation timeline usually look like?",
        "We need the quote to be addressed to {company} headquarters.",
        "Is the {amount} price per year or for the whole term?",
        "Can we move our meeting to {weekday} at the same time?",
        "Forwarding this to our finance team for review.",
        "Which data sources does {product} connect to out of the box?",
        "We are collecting quotes from a few vendors this {quarter}.",
    ),
    (True, 0): (
        "Unfortunately the price is well above what we budgeted.",
        "We have decided to go with {competitor} instead.",
        "Our budget has been frozen until further notice.",
        "We're not interested at this time.",
        "Honestly, {amount} is too expensive for us right now.",
        "Leadership decided to put this project on hold.",
        "The demo did not really address our main problems.",
        "We won't be moving forward with {product}.",
        "Please remove me from your mailing list.",
        "{competitor} came back with a much better offer.",
        "We need to push this out indefinitely, sorry.",
        "I'm disappointed that the pilot did not work as promised.",
        "There's no appetite for a new tool this {quarter}.",
    ),
    (False, 2): (
        "Great speaking with you today, thanks for your time!",
        "I'm excited about what {product} can do for {company}.",
        "Really glad the demo resonated with your team.",
        "Thrilled to hear the pilot went so well.",
        "Looking forward to our partnership!",
        "Thanks for the warm welcome on {weekday}, it was a great session.",
    ),
    (False, 1): (
        "Just following up on my last note.",
        "Attached is the proposal for {product} at {amount}.",
        "Would {weekday} work for a quick call?",
        "I've sent a calendar invite for {date}.",
        "Let me know if you have any questions about the quote.",
        "Checking in to see whether you had a chance to review the proposal.",
        "Here is the security documentation you asked for.",
        "I can walk your team through the implementation plan.",
        "Happy to loop in our solutions engineer for the technical questions.",
        "Please find the updated order form attached.",
    ),
    (False, 0): (
        "Sorry to hear you've decided to go in a different direction.",
        "I haven't heard back, so I'll assume this isn't a priority anymore.",
        "Unfortunately we can't go below {amount} on price.",
        "I'm going to close your file for now.",
        "Disappointing news, but I understand.",
    ),
}

MIXED: dict[int, tuple[tuple[str, int], ...]] = {
    0: (
        ("Thanks again for all your time and effort, {r_first}.", 2),
        ("We really appreciated the great demo though.", 2),
        ("Your team was wonderful to work with.", 2),
        ("Let me know if anything changes on your side.", 1),
        ("Feel free to reach out next {quarter}.", 1),
    ),
    1: (
        ("Thanks, really appreciate the quick help!", 2),
        ("Looking forward to hearing from you.", 2),
        ("Timing is a bit tight on our side, unfortunately.", 0),
        ("Sorry for the slow reply, it's been a hectic week.", 0),
    ),
    2: (
        ("Procurement will send the paperwork by {date}.", 1),
        ("I'll forward the contract to legal for signature.", 1),
        ("Please send the invoice to our finance team.", 1),
        ("Let me know which time works best.", 1),
    ),
}
"""Secondary sentence per main tone, with its own tone (a polite closing after bad news)."""

GREETINGS: tuple[str, ...] = (
    "Hi {name},",
    "Hello {name},",
    "Hey {name},",
    "Dear {name},",
    "{name},",
)
CLOSINGS: tuple[str, ...] = (
    "Best,",
    "Thanks,",
    "Regards,",
    "Cheers,",
    "Best regards,",
    "Thank you,",
)
URL_LINES: tuple[str, ...] = (
    "Here's the link: https://{domain}/share/{token}",
    "Details are in https://docs.{domain}/{token}",
    "Book a slot here: https://calendly.com/{token}",
)
FOOTERS: tuple[str, ...] = (
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are intended only for the named "
    "recipient and may contain confidential information. If you received it in error, please "
    "notify the sender and delete it.",
    "This message may contain privileged information. Any unauthorised review, use or "
    "distribution is prohibited.",
    "Please consider the environment before printing this email.",
)
