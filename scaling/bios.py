"""Synthetic biographies for measuring knowledge capacity (Allen-Zhu & Li 2024, "Physics of Language Models
3.3: Knowledge Capacity Scaling Laws").

``bioS(N)``: N people with unique full names drawn from first × middle × last pools of 400 × 400 × 1000
(N0 = 1.6e8 possible names) and six attributes, each drawn uniformly and independently per person:

=============  =====================================  ===========
attribute      values                                 cardinality
=============  =====================================  ===========
birth_date     month × day × year (12 × 28 × 200)     67,200
birth_city     generated city names                   200
university     generated university names             300
major          hand-written list                      100
employer       generated company names                263
work_city      the employer's head-office city        (determined by the employer: no extra bits)
=============  =====================================  ===========

plus a pronoun (he/she). S0 = 67,200 · 200 · 300 · 100 · 263 ≈ 1.06e14 value combinations (46.6 bits).
Names and place/company names come from Faker (en_US) under a fixed seed; no downloads.

Each attribute has 50 sentence templates (25 phrasings of our own, each also with a lead-in). The first
sentence names the person in full, later ones use the pronoun. Variants:

- ``bioS_simple``: one fixed biography per person (templates drawn once; canonical sentence order);
- ``bioS`` (multi+permute): templates and sentence order re-drawn at every exposure;
- ``bioD(N, K, C, D, L, T)``: the paper's parametric family: K attributes, each value C chunks drawn from
  that attribute's D chunks, each chunk L tokens from a T-token alphabet (see :func:`bioD`).

Tokens come from a closed vocabulary (:class:`BioTokenizer`): one token per word, punctuation mark, name
part and attribute value (dates are month, day, ``,``, year), or, with ``pieces`` = V, name parts and
values split into V byte-pair pieces (:func:`train_pieces`). :class:`BioSource` implements the
``TokenSource`` protocol of scaling/data.py with exact exposures: epoch e of the stream is every biography
once, in an order shuffled per epoch; E epochs = E exposures of every person. Optional junk documents
(random or repetitive) can be mixed in at a token ratio, and useful documents can carry a domain token.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from scaling.errors import UserError

__all__ = [
    "ATTRIBUTES",
    "CARDINALITY",
    "N0",
    "S0",
    "BioItem",
    "BioSource",
    "BioTokenizer",
    "Pools",
    "World",
    "bioD",
    "bioS",
    "bioS_simple",
    "make_pools",
]

ATTRIBUTES: tuple[str, ...] = ("birth_date", "birth_city", "university", "major", "employer", "work_city")
N_FIRST, N_MIDDLE, N_LAST = 400, 400, 1000
N0: int = N_FIRST * N_MIDDLE * N_LAST  # 1.6e8 possible full names
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
DAYS = tuple(str(d) for d in range(1, 29))
YEARS = tuple(str(y) for y in range(1801, 2001))
N_CITIES, N_UNIVERSITIES, N_MAJORS, N_EMPLOYERS = 200, 300, 100, 263
#: Independent value counts; work_city is a function of the employer and adds nothing.
CARDINALITY: dict[str, int] = {
    "birth_date": len(MONTHS) * len(DAYS) * len(YEARS),
    "birth_city": N_CITIES,
    "university": N_UNIVERSITIES,
    "major": N_MAJORS,
    "employer": N_EMPLOYERS,
}
S0: int = math.prod(CARDINALITY.values())

MAJORS = (
    "Accounting", "Aerospace Engineering", "African Studies", "Agriculture", "Anthropology",
    "Applied Mathematics", "Archaeology", "Architecture", "Art History", "Astronomy",
    "Biochemistry", "Bioengineering", "Biology", "Botany", "Business Administration",
    "Chemical Engineering", "Chemistry", "Civil Engineering", "Classics", "Cognitive Science",
    "Communications", "Comparative Literature", "Computer Engineering", "Computer Science",
    "Creative Writing",
    "Criminology", "Dance", "Data Science", "Dentistry", "Design",
    "Earth Science", "Ecology", "Economics", "Education", "Electrical Engineering",
    "English Literature", "Entomology", "Environmental Science", "Epidemiology", "Ethnic Studies",
    "Film Studies", "Finance", "Fine Arts", "Food Science", "Forestry",
    "French", "Genetics", "Geography", "Geology", "German",
    "Graphic Design", "Health Sciences", "History", "Hospitality Management", "Industrial Engineering",
    "Information Systems", "International Relations", "Journalism", "Kinesiology", "Labor Studies",
    "Latin American Studies", "Law", "Linguistics", "Management", "Marine Biology",
    "Marketing", "Materials Science", "Mathematics", "Mechanical Engineering", "Media Studies",
    "Medicine", "Meteorology", "Microbiology", "Music", "Musicology",
    "Neuroscience", "Nuclear Engineering", "Nursing", "Nutrition", "Oceanography",
    "Pharmacology", "Pharmacy", "Philosophy", "Photography", "Physics",
    "Political Science", "Psychology", "Public Health", "Public Policy", "Religious Studies",
    "Russian", "Social Work", "Sociology", "Spanish", "Statistics",
    "Theater", "Urban Planning", "Veterinary Science", "Zoology", "Software Engineering",
)  # fmt: skip

# 25 phrasings per attribute; "{v}" is the value. The subject always precedes the value, so the name is
# known when a value is scored. Each phrasing is used bare ("{s} ...") and after a lead-in (50 templates).
_PHRASES: dict[str, tuple[str, ...]] = {
    "birth_date": (
        "was born on {v}", "came into the world on {v}", "was born {v}", "entered life on {v}",
        "first saw daylight on {v}", "arrived on {v}", "was delivered on {v}", "has a birth date of {v}",
        "was welcomed into the family on {v}", "began life on {v}", "drew a first breath on {v}",
        "lists {v} as the date of birth", "marks {v} as a birthday", "joined the world on {v}",
        "was brought into this world on {v}", "was born in the early hours of {v}",
        "has been alive since {v}",
        "traces a birthday back to {v}", "celebrates a birthday on {v}", "was born on the morning of {v}",
        "was born late on {v}", "gives {v} as a birth date", "was born, as the certificate says, on {v}",
        "first opened both eyes on {v}", "became part of the world on {v}",
    ),
    "birth_city": (
        "was born in {v}", "spent early years in {v}", "grew up in {v}", "was raised in {v}",
        "comes from {v}", "is a native of {v}", "hails from {v}", "calls {v} a hometown",
        "first lived in {v}",
        "spent childhood in {v}", "was brought up in {v}", "was born and raised in {v}",
        "passed the first years of life in {v}", "took a first step in {v}", "has roots in {v}",
        "originally comes from {v}", "was born in the town of {v}", "remembers a childhood in {v}",
        "learned to walk in {v}", "lived as a child in {v}", "is originally from {v}",
        "was born at a hospital in {v}", "began life in {v}", "was a child in {v}",
        "first went to school in {v}",
    ),
    "university": (
        "studied at {v}", "graduated from {v}", "attended {v}", "received an education at {v}",
        "earned a degree from {v}", "was a student at {v}", "enrolled at {v}", "completed studies at {v}",
        "went to college at {v}", "holds a degree from {v}", "is a graduate of {v}",
        "spent four years at {v}",
        "took classes at {v}", "was educated at {v}", "finished university at {v}",
        "received mentorship at {v}", "studied for a degree at {v}", "obtained a diploma from {v}",
        "did undergraduate work at {v}", "matriculated at {v}", "earned a bachelor's degree at {v}",
        "trained at {v}", "completed an education at {v}", "spent college years at {v}",
        "was admitted to {v}",
    ),
    "major": (
        "studied {v}", "majored in {v}", "focused on {v}", "specialized in {v}", "earned a degree in {v}",
        "completed an education with a focus on {v}", "chose {v} as a major", "concentrated on {v}",
        "pursued {v} at university", "took a degree in {v}", "studied the field of {v}",
        "devoted college years to {v}", "received training in {v}", "graduated with a major in {v}",
        "learned {v} at university", "read {v} in college", "selected {v} as a field of study",
        "holds a degree in {v}", "did coursework in {v}", "followed a program in {v}",
        "earned a diploma in {v}", "studied {v} as an undergraduate", "was trained in {v}",
        "picked {v} as a major", "explored {v} in depth",
    ),
    "employer": (
        "worked for {v}", "was employed by {v}", "works at {v}", "had a job at {v}", "took a position at {v}",
        "joined {v}", "was hired by {v}", "built a career at {v}", "is on the staff of {v}",
        "had a professional role at {v}", "earned a living at {v}", "is employed at {v}",
        "held a job with {v}", "signed on with {v}", "started working at {v}", "found employment with {v}",
        "was on the payroll of {v}", "spent a career with {v}", "became an employee of {v}",
        "works for {v}", "took a job with {v}", "serves at {v}", "was recruited by {v}",
        "has a job with {v}", "is a member of staff at {v}",
    ),
    "work_city": (
        "worked in {v}", "was employed in {v}", "works in {v}", "had a job in {v}", "commuted to {v}",
        "had an office in {v}", "moved to {v} for work", "earned a living in {v}",
        "spent working days in {v}", "built a career in {v}", "is based in {v}",
        "relocated to {v} for a job", "held a position in {v}", "had a workplace in {v}",
        "went to work in {v}", "works out of {v}", "was stationed in {v}", "pursued a career in {v}",
        "found work in {v}", "took a job in {v}", "has a desk in {v}", "spends workdays in {v}",
        "was posted to {v}", "does business in {v}", "is employed in {v}",
    ),
}  # fmt: skip
_LEAD_INS = ("Records show that", "It is known that", "By all accounts,", "As it happens,", "In fact,")
N_TEMPLATES = 50


def templates(attribute: str) -> tuple[str, ...]:
    """The 50 templates of an attribute: "{s} <phrase>." and "<lead-in> {s} <phrase>." ({s}: subject)."""
    phrases = _PHRASES[attribute]
    bare = tuple(f"{{s}} {p}." for p in phrases)
    led = tuple(f"{_LEAD_INS[i % len(_LEAD_INS)]} {{s}} {p}." for i, p in enumerate(phrases))
    return bare + led


_WORD = re.compile(r"\{s\}|\{v\}|[A-Za-z0-9]+|[^\sA-Za-z0-9]")


# --------------------------------------------------------------------------------------------------------
# Pools and the closed vocabulary.


@dataclass(frozen=True)
class Pools:
    """Name and value pools (all strings unique within a pool) and each employer's head-office city."""

    first: tuple[str, ...]
    middle: tuple[str, ...]
    last: tuple[str, ...]
    cities: tuple[str, ...]
    universities: tuple[str, ...]
    majors: tuple[str, ...]
    employers: tuple[str, ...]
    hq: tuple[int, ...]  # employer index -> index into cities
    faker_version: str

    def checksum(self) -> str:
        text = "\n".join(
            "|".join(map(str, p))
            for p in (self.first, self.middle, self.last, self.cities, self.universities, self.majors)
        )
        text += "\n" + "|".join(self.employers) + "\n" + "|".join(map(str, self.hq))
        return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def make_pools(seed: int = 0) -> Pools:
    """Draw the pools from Faker's en_US lists and generators under a fixed seed.

    Faker's en_US list has 690 distinct first names, so the first and middle pools (400 each) overlap in
    strings; a full name is a (first, middle, last) triple, so N0 = 400·400·1000 regardless.
    """
    import faker
    from faker.providers.person.en_US import Provider as Person

    rng = np.random.default_rng([seed, 1])
    given = sorted(set(Person.first_names_female) | set(Person.first_names_male))
    last = sorted(set(Person.last_names))
    if len(given) < N_FIRST or len(last) < N_LAST:
        raise RuntimeError(f"Faker {faker.VERSION} has too few names ({len(given)} given, {len(last)} last)")
    first = tuple(given[i] for i in rng.choice(len(given), N_FIRST, replace=False))
    middle = tuple(given[i] for i in rng.choice(len(given), N_MIDDLE, replace=False))
    last_pool = tuple(last[i] for i in rng.choice(len(last), N_LAST, replace=False))

    fake = faker.Faker("en_US")
    fake.seed_instance(seed)
    places: list[str] = []
    seen: set[str] = set()
    while len(places) < N_CITIES + N_UNIVERSITIES:
        c = fake.city()
        if c not in seen:
            seen.add(c)
            places.append(c)
    cities = tuple(places[:N_CITIES])
    kinds = (
        "University of {}",
        "{} University",
        "{} College",
        "{} Institute of Technology",
        "{} State University",
    )
    universities = tuple(
        kinds[k].format(p)
        for p, k in zip(places[N_CITIES:], rng.integers(0, len(kinds), N_UNIVERSITIES), strict=True)
    )
    employers: list[str] = []
    seen = set()
    while len(employers) < N_EMPLOYERS:
        c = fake.company()
        if c not in seen:
            seen.add(c)
            employers.append(c)
    hq = tuple(int(i) for i in rng.integers(0, N_CITIES, N_EMPLOYERS))
    return Pools(first, middle, last_pool, cities, universities, MAJORS, tuple(employers), hq, faker.VERSION)


def train_pieces(words: list[str], size: int) -> dict[str, tuple[str, ...]]:
    """Byte-pair encoding (Sennrich et al. 2016) of ``words`` into a vocabulary of at most ``size`` pieces.

    Every word starts as its characters; every piece but a word's last carries a ``@@`` suffix (as in
    subword-nmt), so no word's pieces are a prefix of another word's and a value's loss needs no end
    marker. The most frequent adjacent pair (counted with the words' multiplicity; ties broken by the
    pair's strings) is merged until ``size`` distinct pieces exist or no pair is left. Returns each
    distinct word's final segmentation, which is its encoding. Written here rather than taken from the
    ``tokenizers`` package: that trainer's merges depend on the process's hash seed, and the vocabulary
    must be reproducible.
    """
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    seg = {w: [*(f"{c}@@" for c in w[:-1]), w[-1]] for w in sorted(counts)}
    vocab = {p for s in seg.values() for p in s}
    while len(vocab) < size:
        pairs: dict[tuple[str, str], int] = {}
        for w, s in seg.items():
            for pair in itertools.pairwise(s):
                pairs[pair] = pairs.get(pair, 0) + counts[w]
        if not pairs:
            break
        a, b = min(pairs, key=lambda pr: (-pairs[pr], pr))
        merged = a[:-2] + b
        for s in seg.values():
            i = 0
            while i < len(s) - 1:
                if s[i] == a and s[i + 1] == b:
                    s[i : i + 2] = [merged]
                i += 1
        vocab.add(merged)
    return {w: tuple(s) for w, s in seg.items()}


def _named_entries(p: Pools) -> list[str]:
    """The vocabulary entries that ``pieces`` splits: name parts, days, years and the value pools."""
    return [*p.first, *p.middle, *p.last, *DAYS, *YEARS, *p.cities, *p.universities, *p.majors, *p.employers]


@functools.lru_cache(maxsize=4)
def _piece_map(seed: int, size: int) -> dict[str, tuple[str, ...]]:
    """Pieces of every name part and value of the seed's pools (BPE trained on the pools' words, each
    entry's words counted once per entry); template words, months and punctuation stay whole."""
    entries = _named_entries(make_pools(seed))
    seg = train_pieces([w for e in entries for w in _WORD.findall(e)], size)
    return {e: tuple(x for w in _WORD.findall(e) for x in seg[w]) for e in entries}


class BioTokenizer:
    """A closed vocabulary: special tokens, then entries (words, punctuation, name parts, whole values).

    With ``pieces`` (entry -> its pieces, from :func:`train_pieces`), those entries are stored as their
    pieces instead of whole. ``ids(entry)`` gives an entry's token ids, ``encode`` a list of entries' ids
    concatenated; ``decode`` renders ids as text (spaces between entries, none before punctuation or a
    piece that follows a ``@@`` piece).
    """

    SPECIALS = ("<s>", "<bios>")

    def __init__(self, entries: list[str], pieces: dict[str, tuple[str, ...]] | None = None) -> None:
        vocab: list[str] = []
        index: dict[str, int] = {}
        split: dict[str, list[int]] = {}
        for e in [*self.SPECIALS, *entries]:
            if e in split:
                continue
            parts = (pieces or {}).get(e, (e,))
            for p in parts:
                if p not in index:
                    index[p] = len(vocab)
                    vocab.append(p)
            split[e] = [index[p] for p in parts]
        self.vocab = vocab
        self.index = index
        self._split = split

    def __len__(self) -> int:
        return len(self.vocab)

    def ids(self, entry: str) -> list[int]:
        try:
            return self._split[entry]
        except KeyError:
            raise UserError(f"{entry!r} is not in the biography vocabulary") from None

    def encode(self, entries: list[str]) -> list[int]:
        return [i for e in entries for i in self.ids(e)]

    def decode(self, ids) -> str:
        out, joined = "", False
        for i in ids:
            tok = self.vocab[int(i)]
            glue = joined or (len(tok) == 1 and not tok.isalnum()) or out.endswith("'")  # no space before
            joined = tok.endswith("@@")  # punctuation or inside a word
            tok = tok[:-2] if joined else tok
            out += tok if not out or glue else " " + tok
        return out


# --------------------------------------------------------------------------------------------------------
# A "world": the people and how their biographies are rendered into tokens.


@dataclass
class BioItem:
    """One rendered biography: token ids and the positions of the name and of every attribute value."""

    tokens: list[int]
    name_pos: list[int]
    value_pos: dict[str, list[int]]


class World:
    """A set of people with attributes and a renderer of their biographies into token ids.

    Subclasses define ``n_people``, ``attributes``, ``cardinality`` (independent value counts whose product
    is the attribute bits), ``n_names`` (N0), ``layouts(rng)`` (per-exposure random choices of all people,
    or None when biographies are fixed) and ``render(i, layout)``.
    """

    tokenizer: BioTokenizer
    n_people: int
    n_names: int
    attributes: tuple[str, ...]
    cardinality: dict[str, int]
    variant: str

    def layouts(self, rng: np.random.Generator) -> list[list[int]] | None:
        return None

    def render(self, i: int, layout: list[int] | None) -> BioItem:
        raise NotImplementedError

    @property
    def attribute_bits(self) -> float:
        """log2 of the number of equally likely value combinations per person (log2 S0 for bioS)."""
        return sum(math.log2(c) for c in self.cardinality.values())

    @property
    def bits_available(self) -> float:
        """Most bits a model can score: N·log2(N0/N) for the names (p1 ≥ ln N, since the N names are
        distinct) plus N·log2(S0) for the attributes."""
        n = self.n_people
        return n * (math.log2(self.n_names / n) + self.attribute_bits)

    def provenance(self) -> dict:
        raise NotImplementedError


class BioSWorld(World):
    """bioS(N) people: unique names, uniform independent attributes, work city = employer's head office.

    ``pieces`` = 0: one token per template word, name part and whole value. ``pieces`` = V > 0: name parts
    and values are split into a V-piece BPE vocabulary trained on the pools (:func:`train_pieces`; e.g. V
    = 384 gives ~3.4 pieces per name part, ~94-token biographies and 563 vocabulary entries instead of
    ~2,800), as GPT-2's tokenizer splits them in the paper; template words stay whole. Small models then
    spend their parameters on the transformer rather than on ~2,800 embedding rows.
    """

    def __init__(self, n_people: int, *, variant: str = "bioS", seed: int = 0, pieces: int = 0) -> None:
        if pieces and pieces < 64:
            raise UserError(f"pieces must be 0 (whole words) or at least 64, got {pieces}")
        if variant not in ("bioS", "bioS_simple"):
            raise UserError(f"bioS variant must be 'bioS' or 'bioS_simple', not {variant!r}")
        if not 1 <= n_people <= N0 // 10:
            raise UserError(f"people must be between 1 and {N0 // 10:,}, got {n_people}")
        self.n_people, self.variant, self.seed = int(n_people), variant, seed
        self.n_names = N0
        self.attributes = ATTRIBUTES
        self.cardinality = dict(CARDINALITY)
        self.pools = pools = make_pools(seed)
        rng = np.random.default_rng([seed, 2, n_people])
        names = rng.choice(N0, size=n_people, replace=False)  # unique full names
        self.first = names // (N_MIDDLE * N_LAST)
        self.middle = (names // N_LAST) % N_MIDDLE
        self.last = names % N_LAST
        self.female = rng.integers(0, 2, n_people).astype(bool)
        self.month = rng.integers(0, len(MONTHS), n_people)
        self.day = rng.integers(0, len(DAYS), n_people)
        self.year = rng.integers(0, len(YEARS), n_people)
        self.birth_city = rng.integers(0, N_CITIES, n_people)
        self.university = rng.integers(0, N_UNIVERSITIES, n_people)
        self.major = rng.integers(0, N_MAJORS, n_people)
        self.employer = rng.integers(0, N_EMPLOYERS, n_people)
        self.work_city = np.asarray(pools.hq)[self.employer]
        # bioS_simple: one template per attribute per person, drawn once.
        self.fixed_templates = rng.integers(0, N_TEMPLATES, (n_people, len(ATTRIBUTES)))

        parsed = {a: [_WORD.findall(t) for t in templates(a)] for a in ATTRIBUTES}
        words = [w for ts in parsed.values() for t in ts for w in t if w not in ("{s}", "{v}")]
        words += ["He", "She", "he", "she", *MONTHS, ","]
        self.pieces = int(pieces)
        split = _piece_map(seed, self.pieces) if pieces else None
        self.tokenizer = tok = BioTokenizer([*words, *_named_entries(pools)], split)
        self._tpl_ids = {
            a: [[x for w in t for x in (["S"] if w == "{s}" else ["V"] if w == "{v}" else tok.ids(w))]
                for t in ts]
            for a, ts in parsed.items()
        }  # fmt: skip
        first, middle, last = ([tok.ids(w) for w in pool] for pool in (pools.first, pools.middle, pools.last))
        city = [tok.ids(w) for w in pools.cities]
        month, day, year = ([tok.ids(w) for w in pool] for pool in (MONTHS, DAYS, YEARS))
        univ, major = [tok.ids(w) for w in pools.universities], [tok.ids(w) for w in pools.majors]
        employer, comma = [tok.ids(w) for w in pools.employers], tok.ids(",")
        self._pronoun = {
            (False, True): tok.ids("He")[0],
            (True, True): tok.ids("She")[0],
            (False, False): tok.ids("he")[0],
            (True, False): tok.ids("she")[0],
        }  # (female, sentence start) -> id
        # Per-person token ids of the name and of every value, precomputed (rendering is on the hot path).
        self._values = [
            {
                "birth_date": month[m] + day[d] + comma + year[y],
                "birth_city": city[bc],
                "university": univ[u],
                "major": major[mj],
                "employer": employer[e],
                "work_city": city[wc],
            }
            for m, d, y, bc, u, mj, e, wc in zip(
                *(a.tolist() for a in (self.month, self.day, self.year, self.birth_city, self.university,
                                       self.major, self.employer, self.work_city)), strict=True)
        ]  # fmt: skip
        self._names = [
            first[f] + middle[m] + last[la]
            for f, m, la in zip(self.first.tolist(), self.middle.tolist(), self.last.tolist(), strict=True)
        ]

    def values(self, i: int) -> dict[str, list[int]]:
        """Token ids of person i's value for every attribute."""
        return self._values[i]

    def name_ids(self, i: int) -> list[int]:
        return self._names[i]

    def name(self, i: int) -> str:
        return self.tokenizer.decode(self.name_ids(i))

    def layouts(self, rng: np.random.Generator) -> list[list[int]] | None:
        """bioS multi+permute: every person's template per attribute and sentence order for one exposure
        (row = 6 template indices then the 6 attribute indices in sentence order); bioS_simple: None."""
        if self.variant == "bioS_simple":
            return None
        k = len(ATTRIBUTES)
        choice = rng.integers(0, N_TEMPLATES, (self.n_people, k))
        order = np.argsort(rng.random((self.n_people, k)), axis=1)
        return np.concatenate([choice, order], axis=1).tolist()

    def render(self, i: int, layout: list[int] | None) -> BioItem:
        """Person i's biography: the fixed one (layout None) or the templates and sentence order of
        ``layout`` (a row of :meth:`layouts`)."""
        k = len(ATTRIBUTES)
        if layout is None:
            choice, order = self.fixed_templates[i].tolist(), range(k)
        else:
            choice, order = layout[:k], layout[k:]
        values = self._values[i]
        female = bool(self.female[i])
        tokens: list[int] = []
        name_pos: list[int] = []
        value_pos: dict[str, list[int]] = {}
        for n, a_idx in enumerate(order):
            a = ATTRIBUTES[a_idx]
            for j, w in enumerate(self._tpl_ids[a][choice[a_idx]]):
                if w == "S":
                    if n == 0:
                        name_pos = list(range(len(tokens), len(tokens) + len(self._names[i])))
                        tokens += self._names[i]
                    else:
                        tokens.append(self._pronoun[(female, j == 0)])
                elif w == "V":
                    value_pos[a] = list(range(len(tokens), len(tokens) + len(values[a])))
                    tokens += values[a]
                else:
                    tokens.append(w)  # template ids are flattened: one entry per token
        return BioItem(tokens, name_pos, value_pos)

    def provenance(self) -> dict:
        return {
            "generator": f"{self.variant}(N={self.n_people})",
            "pools": "Faker en_US names, cities and companies; hand-written majors",
            "faker_version": self.pools.faker_version,
            "pools_sha256": self.pools.checksum(),
            "seed": self.seed,
            "N0": self.n_names,
            "S0": S0,
            "templates_per_attribute": N_TEMPLATES,
            "pieces": self.pieces,
        }


class BioDWorld(World):
    """bioD(N, K, C, D, L, T) (Allen-Zhu & Li 2024, Sec. 2): N people, K attributes; attribute k has its
    own D chunks, each a distinct sequence of L tokens over a T-token alphabet; a person's value for k is C
    chunks drawn uniformly and independently from those D. A name is M = ``name_tokens`` alphabet tokens,
    the N names distinct draws from the T^M possible (N0 = T^M).

    A biography is ``name v_1 ... v_K``: the attributes in a fixed order, without marker tokens (the order
    says which attribute a value belongs to), so every biography has M + K·C·L tokens and the vocabulary
    is the T alphabet tokens plus the specials. Knowledge per token is then high (up to log2 T bits per
    value token, with L = 1 and D = T) and the embedding small: for a small model the parameters the paper
    counts are mostly the transformer's, unlike bioS with its thousands of name and value tokens.

    The attribute bits are N·K·C·log2 D; the K·D·L·log2 T bits of the chunk dictionaries themselves are
    not counted (with L = 1 each dictionary is a set of D alphabet tokens), so the bits are a lower bound,
    tight when N·C ≫ D·L.
    """

    def __init__(
        self, n: int, k: int, c: int, d: int, length: int, t: int, *, name_tokens: int = 4, seed: int = 0
    ) -> None:
        for key, v in dict(N=n, K=k, C=c, D=d, L=length, T=t, name_tokens=name_tokens).items():
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < 1:
                raise UserError(f"bioD parameter {key} must be a positive integer, got {v!r}")
        if d > t**length:
            raise UserError(f"bioD: D={d} distinct chunks do not fit in T^L = {t}^{length}")
        if t < 2:
            raise UserError(f"bioD: the alphabet needs T ≥ 2 tokens, got {t}")
        if not 10 * n <= t**name_tokens < 2**62 or t**length >= 2**62:
            raise UserError(
                f"bioD: {n} distinct names need 10·N ≤ T^name_tokens < 2^62 (and T^L < 2^62), got "
                f"{t}^{name_tokens}"
            )
        self.n_people, self.variant, self.seed = int(n), "bioD", seed
        self.k, self.c, self.d, self.length, self.t, self.name_tokens = k, c, d, length, t, name_tokens
        self.n_names = t**name_tokens
        self.attributes = tuple(f"attr{j}" for j in range(k))
        self.cardinality = {a: d**c for a in self.attributes}
        rng = np.random.default_rng([seed, 3, n, k, c, d, length, t, name_tokens])
        names = _distinct_codes(rng, self.n_names, n)
        self.names = (names[:, None] // t ** np.arange(name_tokens)[::-1]) % t  # [N, M] alphabet indices
        # Chunk dictionaries: D distinct L-token sequences per attribute.
        self.chunks = np.empty((k, d, length), dtype=np.int64)
        for j in range(k):
            codes = _distinct_codes(rng, t**length, d)
            self.chunks[j] = (codes[:, None] // t ** np.arange(length)[::-1]) % t
        self.assign = rng.integers(0, d, (n, k, c))
        self.tokenizer = tok = BioTokenizer([f"t{x}" for x in range(t)])
        self._alpha = np.array([tok.index[f"t{x}"] for x in range(t)])
        values = self.chunks[np.arange(k)[None, :, None], self.assign]  # [N, K, C, L]
        self._tokens = self._alpha[np.concatenate([self.names, values.reshape(n, -1)], axis=1)]
        span = c * length
        self._value_pos = {a: list(range(name_tokens + j * span, name_tokens + (j + 1) * span))
                           for j, a in enumerate(self.attributes)}  # fmt: skip

    @property
    def document_length(self) -> int:
        """Tokens in every biography (without the source's ``<s>``/domain prefix)."""
        return self.name_tokens + self.k * self.c * self.length

    def render(self, i: int, layout: list[int] | None) -> BioItem:
        return BioItem(self._tokens[i].tolist(), list(range(self.name_tokens)), self._value_pos)

    def provenance(self) -> dict:
        return {
            "generator": f"bioD(N={self.n_people}, K={self.k}, C={self.c}, D={self.d}, "
            f"L={self.length}, T={self.t}, name_tokens={self.name_tokens})",
            "seed": self.seed,
            "N0": self.n_names,
            "attribute_bits_per_person": self.attribute_bits,
            "note": "dictionary bits K·D·L·log2(T) not counted (lower bound)",
        }


def _distinct_codes(rng: np.random.Generator, space: int, n: int) -> np.ndarray:
    """``n`` distinct integers drawn uniformly from range(space), space < 2^62 (rejection of repeats)."""
    if space <= 10**7:
        return rng.choice(space, size=n, replace=False)
    seen: dict[int, None] = {}
    while len(seen) < n:
        for x in rng.integers(0, space, 2 * (n - len(seen))).tolist():
            seen.setdefault(x)
    return np.array(list(seen)[:n], dtype=np.int64)


# --------------------------------------------------------------------------------------------------------
# The token source: exact exposures, optional junk and domain token.

JUNK_KINDS = ("random", "repetitive")


@dataclass
class BioSource:
    """``TokenSource`` over a :class:`World`.

    Epoch e (for a training seed s) is every person's biography once, in the order of a permutation drawn
    from ``default_rng([s, e])``, each document ``<s> [<bios>] bio``; with ``junk`` = j > 0, about j·(useful
    tokens) of junk documents are interleaved at random places (j junk tokens per useful token: 7 is the
    paper's 7:1). A junk document is ``<s>`` and tokens drawn from the non-special vocabulary, as long as an
    average biography document: it carries no tag, so without the domain token nothing tells junk from
    knowledge but content; ``domain_token`` puts ``<bios>`` on the useful documents only (Allen-Zhu & Li
    2024, Sec. 6). Epochs are
    concatenated into one stream cut into rows of ``seq_len + 1`` tokens with stride ``seq_len`` (every
    token is predicted once); step k's batch is rows k·B … (k+1)·B − 1. Training on
    :meth:`tokens_for` (E) tokens therefore shows every biography exactly E times (up to the rounding of the
    last step). Validation batches are the epoch drawn with seed −1 (fresh templates for bioS multi, the
    same biographies for bioS_simple / bioD): the loss on the training people.
    """

    world: World
    junk: float = 0.0  # junk tokens per useful token
    junk_kind: str = "random"
    domain_token: bool = False
    name: str = ""
    _epochs: dict = field(default_factory=dict, repr=False)
    _lengths: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.junk, bool) or not (0.0 <= float(self.junk) <= 1000.0):
            raise UserError(f"junk (junk tokens per useful token) must be in [0, 1000], not {self.junk!r}")
        self.junk = float(self.junk)
        if self.junk_kind not in JUNK_KINDS:
            raise UserError(f"junk_kind must be one of {JUNK_KINDS}, not {self.junk_kind!r}")
        self.name = self.name or self.world.variant
        tok = self.world.tokenizer
        self._bos, self._domain = tok.index["<s>"], tok.index["<bios>"]
        self._n_train = len(self.epoch_tokens(0, 0))

    @property
    def vocab_size(self) -> int:
        return len(self.world.tokenizer)

    @property
    def n_train_tokens(self) -> int:
        """Tokens in one epoch (one exposure of every person, plus junk) for training seed 0."""
        return self._n_train

    @property
    def document_length(self) -> int | None:
        """Tokens of every document (prefix included) when all have one length (bioD; junk documents are
        made as long), else None. A ``seq_len`` that is a multiple of it cuts no biography."""
        length = getattr(self.world, "document_length", None)
        return None if length is None else length + len(self.prefix())

    def prefix(self) -> list[int]:
        return [self._bos, self._domain] if self.domain_token else [self._bos]

    def item(self, i: int, layout: list[int] | None = None) -> BioItem:
        """Biography i as a document (prefix included; positions shifted accordingly)."""
        it = self.world.render(i, layout)
        p = self.prefix()
        shift = len(p)
        return BioItem(
            p + it.tokens,
            [x + shift for x in it.name_pos],
            {a: [x + shift for x in v] for a, v in it.value_pos.items()},
        )

    def measurement_items(self, seed: int) -> list[BioItem]:
        """The biographies the model saw in its first exposure (epoch 0 of training seed ``seed``)."""
        return self._render_epoch(0, seed)[1]

    def _render_epoch(self, epoch: int, seed: int) -> tuple[np.ndarray, list[BioItem]]:
        w = self.world
        rng = np.random.default_rng([seed & 0xFFFFFFFF, epoch, 7])
        order = rng.permutation(w.n_people).tolist()
        layouts = w.layouts(rng)
        items: list[BioItem] = [None] * w.n_people  # type: ignore[list-item]
        docs: list[list[int]] = []
        for i in order:
            it = self.item(i, None if layouts is None else layouts[i])
            items[i] = it
            docs.append(it.tokens)
        if self.junk > 0:
            useful = sum(len(d) for d in docs)
            mean_len = useful / len(docs)
            n_junk = round(self.junk * len(docs))
            junk = self._junk_docs(n_junk, round(mean_len), rng)
            slots = rng.integers(0, len(docs) + 1, n_junk)
            merged: list[list[int]] = []
            by_slot: dict[int, list[list[int]]] = {}
            for s, j in zip(slots.tolist(), junk, strict=True):
                by_slot.setdefault(s, []).append(j)
            for k, d in enumerate(docs):
                merged += by_slot.get(k, [])
                merged.append(d)
            merged += by_slot.get(len(docs), [])
            docs = merged
        return np.fromiter((t for d in docs for t in d), dtype=np.int32), items  # type: ignore[return-value]

    def _junk_docs(self, n: int, length: int, rng: np.random.Generator) -> list[list[int]]:
        """Untagged junk documents of ``length`` tokens, ``<s>`` then uniform tokens over the non-special
        vocabulary: fresh ones ("random") or draws from 16 fixed ones ("repetitive")."""
        lo, hi = len(BioTokenizer.SPECIALS), self.vocab_size
        body = max(1, length - 1)
        if self.junk_kind == "random":
            return [[self._bos, *rng.integers(lo, hi, body).tolist()] for _ in range(n)]
        fixed_rng = np.random.default_rng([self.world.seed, 11])
        pool = [[self._bos, *fixed_rng.integers(lo, hi, body).tolist()] for _ in range(16)]
        return [pool[int(j)] for j in rng.integers(0, len(pool), n)]

    def epoch_tokens(self, epoch: int, seed: int) -> np.ndarray:
        key = (epoch, seed)
        if key not in self._epochs:
            if len(self._epochs) >= 3:
                self._epochs.pop(next(iter(self._epochs)))
            self._epochs[key] = self._render_epoch(epoch, seed)[0]
            self._lengths[key] = len(self._epochs[key])
        return self._epochs[key]

    def _epoch_length(self, epoch: int, seed: int) -> int:
        if (epoch, seed) not in self._lengths:
            self.epoch_tokens(epoch, seed)
        return self._lengths[(epoch, seed)]

    def stream(self, start: int, stop: int, seed: int) -> np.ndarray:
        """Tokens [start, stop) of the concatenated epochs for training seed ``seed``."""
        out: list[np.ndarray] = []
        epoch, offset = 0, 0
        while offset < stop:
            n = self._epoch_length(epoch, seed)
            lo, hi = max(start, offset), min(stop, offset + n)
            if lo < hi:
                out.append(self.epoch_tokens(epoch, seed)[lo - offset : hi - offset])
            offset += n
            epoch += 1
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int32)

    def tokens_for(self, exposures: int, seed: int) -> int:
        """Stream tokens that hold exactly ``exposures`` epochs for training seed ``seed``."""
        return sum(self._epoch_length(e, seed) for e in range(exposures))

    def train_batch(self, step: int, batch_size: int, seq_len: int, seed: int) -> torch.Tensor:
        """int64 [batch_size, seq_len + 1]: rows step·B … of the stream (stride seq_len)."""
        first = step * batch_size * seq_len
        flat = self.stream(first, first + batch_size * seq_len + 1, seed)
        starts = np.arange(batch_size)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
        return torch.from_numpy(flat[starts].astype(np.int64))

    def val_batches(self, batch_size: int, seq_len: int, n_tokens: int) -> list[torch.Tensor]:
        """Fixed rows (stride seq_len) from the start of the validation epoch, about n_tokens predictions."""
        flat = self._render_epoch(0, -1)[0]
        n_rows = max(1, min(math.ceil(n_tokens / seq_len), (len(flat) - 1) // seq_len))
        if (len(flat) - 1) < seq_len:
            raise UserError(f"seq_len {seq_len} is longer than one epoch of {self.name} ({len(flat)} tokens)")
        starts = np.arange(n_rows)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
        return list(torch.split(torch.from_numpy(flat[starts].astype(np.int64)), batch_size))

    def used_tokens(self) -> np.ndarray:
        """Sorted ids of the vocabulary entries that occur in training (for the paper's parameter count).

        bioS multi draws templates at random, so every template word occurs for any realistic N; names and
        values are taken from the people themselves."""
        ids: set[int] = set(self.prefix())
        if self.junk > 0:  # junk covers the non-special vocabulary (repetitive junk nearly)
            ids |= set(range(len(BioTokenizer.SPECIALS), self.vocab_size))
        w = self.world
        if isinstance(w, BioSWorld) and w.variant == "bioS":
            for ts in w._tpl_ids.values():
                ids |= {x for t in ts for x in t if isinstance(x, int)}
            ids |= set(w._pronoun.values())
            for i in range(w.n_people):
                ids.update(w.name_ids(i))
                for v in w.values(i).values():
                    ids.update(v)
        else:
            for it in self.measurement_items(0):
                ids.update(it.tokens)
        return np.array(sorted(ids))

    def provenance(self) -> dict:
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "n_train_tokens": self.n_train_tokens,
            "tokenizer": (
                f"closed vocabulary: words whole, name parts and values as {w.pieces} BPE pieces"
                if getattr(w := self.world, "pieces", 0)
                else "closed vocabulary (words, name parts and whole values)"
            ),
            "junk": self.junk,
            "junk_kind": self.junk_kind,
            "domain_token": self.domain_token,
            **self.world.provenance(),
        }


def bioS(n_people: int, *, seed: int = 0, pieces: int = 0, **source_kw) -> BioSource:
    """bioS(N) multi+permute: templates and sentence order re-drawn at every exposure (``pieces`` > 0:
    name parts and values as that many BPE pieces, see :class:`BioSWorld`)."""
    return BioSource(BioSWorld(n_people, variant="bioS", seed=seed, pieces=pieces), **source_kw)


def bioS_simple(n_people: int, *, seed: int = 0, pieces: int = 0, **source_kw) -> BioSource:
    """bioS(N) simple: one fixed biography per person."""
    return BioSource(BioSWorld(n_people, variant="bioS_simple", seed=seed, pieces=pieces), **source_kw)


def bioD(
    n: int, k: int, c: int, d: int, length: int, t: int, *, name_tokens: int = 4, seed: int = 0, **source_kw
) -> BioSource:
    """bioD(N, K, C, D, L, T) with names of ``name_tokens`` alphabet tokens: see :class:`BioDWorld`."""
    return BioSource(BioDWorld(n, k, c, d, length, t, name_tokens=name_tokens, seed=seed), **source_kw)
