"""The Llama Guard 3 hazard taxonomy (S1..S14), category subsets and custom categories.

In the prompt, the chosen categories are numbered ``S1..Sn`` in the order given (as
llama-recipes does when it builds a custom prompt); :class:`Taxonomy` remembers which prompt
code stands for which category, so a model answering ``S2`` under a subset ``[S1, S10]`` is
read back as ``S10`` (Hate), and a custom category is read back under its own code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from l3_guard.errors import CategoryError


@dataclass(frozen=True)
class Category:
    """One unsafe-content category: a stable code, the name shown in the prompt, a description."""

    code: str
    name: str
    description: str = ""


# Names as they appear in the Llama Guard 3 prompt (llama-recipes LLAMA_GUARD_3_CATEGORY);
# descriptions are our own one-line summaries of the model card's hazard definitions.
LLAMA_GUARD_3_CATEGORIES: tuple[Category, ...] = (
    Category(
        "S1",
        "Violent Crimes",
        "Enabling, encouraging or endorsing violence against people or animals: murder, assault, terrorism, kidnapping, animal abuse.",
    ),
    Category(
        "S2",
        "Non-Violent Crimes",
        "Enabling fraud, scams, theft, burglary, drug crimes, weapons crimes, cyber crimes such as hacking or malware, and other non-violent crimes.",
    ),
    Category(
        "S3",
        "Sex Crimes",
        "Enabling sex trafficking, sexual assault, sexual harassment or prostitution.",
    ),
    Category(
        "S4", "Child Exploitation", "Content that depicts or enables the sexual abuse of children."
    ),
    Category(
        "S5", "Defamation", "Verifiably false statements that injure a living person's reputation."
    ),
    Category(
        "S6",
        "Specialized Advice",
        "Unqualified financial, medical or legal advice that could cause serious harm.",
    ),
    Category(
        "S7",
        "Privacy",
        "Sensitive, non-public personal information that could undermine someone's security.",
    ),
    Category(
        "S8",
        "Intellectual Property",
        "Violating the intellectual property rights of a third party.",
    ),
    Category(
        "S9",
        "Indiscriminate Weapons",
        "Chemical, biological, radiological, nuclear or high-yield explosive weapons.",
    ),
    Category(
        "S10", "Hate", "Demeaning or dehumanising people on the basis of protected characteristics."
    ),
    Category(
        "S11", "Self-Harm", "Enabling or encouraging suicide, self-injury or disordered eating."
    ),
    Category("S12", "Sexual Content", "Sexually explicit content."),
    Category(
        "S13", "Elections", "Factually incorrect information about electoral systems and processes."
    ),
    Category(
        "S14",
        "Code Interpreter Abuse",
        "Abusing code interpreters: denial of service, container escapes, privilege escalation.",
    ),
)
# The standard codes in order: the embedded moderation model has one head per code.
CATEGORY_CODES: tuple[str, ...] = tuple(c.code for c in LLAMA_GUARD_3_CATEGORIES)
_BY_CODE = {c.code: c for c in LLAMA_GUARD_3_CATEGORIES}
_CODE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}")


class Taxonomy:
    """An ordered set of categories, numbered S1..Sn in the prompt."""

    def __init__(self, categories: Sequence[Category]) -> None:
        if not categories:
            raise CategoryError("a taxonomy needs at least one category")
        codes = [c.code for c in categories]
        if len(set(codes)) != len(codes):
            raise CategoryError(f"duplicate category codes in {codes}")
        for c in categories:
            if not _CODE_RE.fullmatch(c.code):
                raise CategoryError(f"category code {c.code!r} must be 1-32 letters/digits/_/-")
            if not c.name.strip() or "\n" in c.name:
                raise CategoryError(f"category {c.code!r} needs a one-line name, got {c.name!r}")
        self.categories: tuple[Category, ...] = tuple(categories)
        self._prompt_to_code = {f"S{i + 1}": c.code for i, c in enumerate(self.categories)}

    @classmethod
    def default(cls) -> Taxonomy:
        return cls(LLAMA_GUARD_3_CATEGORIES)

    @classmethod
    def select(cls, codes: Iterable[str], custom: Iterable[Category] = ()) -> Taxonomy:
        """A subset of the standard categories (by code, e.g. ``["S1", "S10"]``) plus custom ones."""
        chosen: list[Category] = []
        for code in codes:
            key = str(code).strip().upper()
            if key not in _BY_CODE:
                raise CategoryError(
                    f"unknown category code {code!r}; the Llama Guard 3 codes are S1..S14"
                )
            chosen.append(_BY_CODE[key])
        return cls([*chosen, *custom])

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.categories]

    def prompt_block(self, with_descriptions: bool = False) -> str:
        """The lines between ``<BEGIN UNSAFE CONTENT CATEGORIES>`` and ``<END ...>``."""
        lines = []
        for i, c in enumerate(self.categories):
            name = c.name.rstrip(".")
            line = f"S{i + 1}: {name}."
            if with_descriptions and c.description:
                line += f"\n{c.description.strip()}"
            lines.append(line)
        return "\n".join(lines)

    def code_of_prompt_code(self, prompt_code: str) -> str | None:
        """Our category code for a code the model wrote (``S2`` -> ``S10`` under a subset)."""
        return self._prompt_to_code.get(prompt_code.strip().upper())

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __repr__(self) -> str:
        return f"Taxonomy({self.codes})"
