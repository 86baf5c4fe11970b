"""Fixed vocabularies of the simulated world: regions, industries, products, names.

Data, not logic.  Industry and product "fit" values are latent drivers of deal health (the
account's fit to the ideal customer profile); models can only see them through the observed
industry and product columns.
"""

from __future__ import annotations

REGIONS: tuple[str, ...] = ("NA-East", "NA-West", "EMEA", "APAC")

INDUSTRIES: tuple[str, ...] = (
    "software",
    "financial_services",
    "healthcare",
    "manufacturing",
    "retail",
    "telecom",
    "public_sector",
    "education",
)
INDUSTRY_FIT: tuple[float, ...] = (0.45, 0.2, 0.0, -0.1, -0.15, 0.1, -0.45, -0.3)
INDUSTRY_WEIGHT: tuple[float, ...] = (0.22, 0.15, 0.13, 0.14, 0.12, 0.08, 0.08, 0.08)

PRODUCTS: tuple[str, ...] = ("Pulse Starter", "Pulse Pro", "Pulse Analytics", "Pulse Enterprise")
PRODUCT_PRICE: tuple[float, ...] = (0.7, 1.0, 1.15, 1.5)
"""Amount multiplier of each product."""
PRODUCT_BY_SEGMENT: tuple[tuple[float, ...], ...] = (
    (0.55, 0.35, 0.1, 0.0),
    (0.1, 0.45, 0.3, 0.15),
    (0.0, 0.2, 0.3, 0.5),
)
"""Row = segment; the product mix sold there."""
PRODUCT_FIT: tuple[tuple[float, ...], ...] = (
    (0.2, 0.1, -0.3, -0.6),
    (-0.3, 0.15, 0.1, 0.0),
    (-0.6, -0.2, 0.1, 0.2),
)
"""Row = segment; how well each product fits it (a mismatch lowers deal health)."""

LEAD_SOURCES: tuple[str, ...] = ("inbound", "outbound", "partner", "event")
LEAD_SOURCE_FIT: tuple[tuple[float, ...], ...] = (
    (0.45, -0.25, 0.0, 0.1),
    (0.2, -0.1, 0.2, 0.0),
    (-0.3, 0.0, 0.55, 0.1),
)
"""Row = segment; how a lead source shapes deal health there.  A small business that asks for
a demo has a problem today; an enterprise web form is mostly early research, while a partner
referral brings an enterprise sponsor with it."""
INDUSTRY_PRODUCT_FIT: tuple[tuple[float, ...], ...] = (
    (0.0, 0.2, 0.3, 0.0),
    (-0.3, 0.0, 0.45, 0.4),
    (-0.2, -0.1, 0.0, 0.45),
    (0.2, 0.2, -0.35, 0.0),
    (0.35, 0.1, 0.25, -0.4),
    (-0.1, 0.0, 0.4, 0.2),
    (-0.35, -0.2, -0.45, 0.35),
    (0.4, 0.1, -0.4, -0.3),
)
"""Row = industry, column = product: use cases differ by vertical (analytics sells to banks,
telecoms and retailers, not to schools or the public sector, whose data rules stand in the
way; the compliance features of Pulse Enterprise sell to banks, hospitals and governments)."""

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Steven", "Ashley", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kevin", "Carol",
    "Brian", "Amanda", "George", "Melissa", "Timothy", "Deborah", "Ravi", "Priya", "Wei", "Mei",
    "Hiroshi", "Yuki", "Ahmed", "Fatima", "Carlos", "Lucia", "Lars", "Ingrid", "Pierre", "Amelie",
    "Kwame", "Ama", "Sven", "Olga", "Diego", "Sofia", "Noah", "Emma", "Liam", "Olivia", "Arjun",
    "Ananya", "Jonas", "Lea",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Patel", "Sharma", "Chen", "Wang", "Tanaka", "Sato", "Khan", "Ali", "Muller", "Schmidt",
    "Dubois", "Rossi", "Nilsson", "Larsen", "Mensah", "Okafor", "Ivanova", "Silva", "Costa",
    "Novak", "Kowalski", "Fischer",
)  # fmt: skip

COMPANY_FIRST: tuple[str, ...] = (
    "Acme", "Blue", "North", "Silver", "Bright", "Iron", "Summit", "Harbor", "Nova", "Apex",
    "Cedar", "Granite", "Vertex", "Quantum", "Pioneer", "Atlas", "Crescent", "Evergreen", "Falcon",
    "Golden", "Horizon", "Keystone", "Lumen", "Maple", "Orbit", "Prairie", "Redwood", "Sterling",
    "Titan", "Unity", "Vista", "Willow", "Zenith", "Beacon", "Cobalt", "Delta", "Echo", "Fusion",
)  # fmt: skip
COMPANY_SECOND: tuple[str, ...] = (
    "Systems", "Labs", "Health", "Logistics", "Financial", "Works", "Dynamics", "Networks",
    "Retail", "Foods", "Energy", "Media", "Partners", "Analytics", "Manufacturing", "Telecom",
    "Capital", "Software", "Solutions", "Group", "Industries", "Holdings", "Bank", "Insurance",
)  # fmt: skip
COMPANY_SUFFIX: tuple[str, ...] = ("", " Inc", " LLC", " GmbH", " Ltd", " Corp", " plc", " AG")

COMPETITORS: tuple[str, ...] = (
    "Xactly",
    "Varicent",
    "CaptivateIQ",
    "Spiff",
    "Anaplan",
    "QuotaPath",
    "Performio",
)
JOB_TITLES: tuple[str, ...] = (
    "VP Sales", "Head of Revenue Operations", "CFO", "Sales Operations Manager",
    "Director of Finance", "Chief Revenue Officer", "IT Director", "Procurement Lead",
    "Compensation Analyst", "Head of Sales Enablement",
)  # fmt: skip
