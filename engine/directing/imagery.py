"""A sung line → a short picture prompt, by template: keep the words that paint, drop the rest.

"I'm walking through the burning city tonight!" → "walking, burning city" with emphasis 1.25.

The extractor is deliberately small and predictable (no model, no network): words on a stop list —
articles, pronouns, prepositions, auxiliaries, light verbs, fillers ("oh", "yeah", "baby") — and
very short words are dropped; what is left stays in the singer's order, runs of kept words stay
together as one phrase ("burning city"), and the phrases fill `template`. A line that keeps nothing
("oh yeah yeah") adds nothing to the picture.

Emphasis (optional): each "!" and any word in capitals raises the line's weight a little, to at
most `MAX_EMPHASIS`. The director multiplies it into the preset's `lyrics_weight`.

A local rewriter (a small offline language model, say) can replace the template's output later:
pass any callable `(line, imagery) -> prompt` as `rewriter`. None is built here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_EMPHASIS = 1.5
MIN_LETTERS = 3

STOP_WORDS = frozenset("""
a an the this that these those some any each every all both either neither no not nor
i me my mine myself you your yours yourself we us our ours he him his she her hers it its they them
their theirs who whom whose which what whatever whoever where when why how there here
and or but if then than so because as while though although until unless since yet
of in on at to from by for with without within into onto upon over under about above below between
through across along around after before behind beyond near off out up down away back toward towards
am is are was were be been being have has had having do does did doing done will would shall should
can could may might must ought get gets got gotten getting go goes going gone went come comes came
coming make makes made let lets say says said tell told know knew known think thought want wanted
wanna gonna gotta need needs take took give gave keep kept put see saw seen look looked feel felt
try tried seem seems just only also too very really so such much more most many few less least
still again ever never always now soon already even maybe perhaps yes yeah yea oh ooh ohh ah ahh aah
uh huh hey whoa woah mm mmm hmm la na da doo baby babe like got one ones thing things way
im ive ill id youre youve youll youd were weve well wed theyre theyve theyll theyd hes shes its
dont doesnt didnt cant couldnt wont wouldnt shouldnt isnt arent wasnt werent aint lets thats whats
theres heres cause cuz till tonight today
""".split())

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_BREAK = re.compile(r"[,.;:!?()\[\]\"/—–]| - ")

Rewriter = Callable[[str, "Imagery"], str]


@dataclass(frozen=True)
class Imagery:
    text: str  # the prompt ("" when the line has no picture words)
    phrases: tuple[str, ...]
    emphasis: float = 1.0


def emphasis_of(line: str) -> float:
    bangs = min(2, line.count("!"))
    shouted = any(len(w) > 1 and w.isupper() for w in _WORD.findall(line))
    return min(MAX_EMPHASIS, 1.0 + 0.25 * bangs + 0.25 * shouted)


def extract_imagery(line: str, template: str = "{scene}", stop_words: frozenset[str] = STOP_WORDS,
                    emphasis: bool = True) -> Imagery:
    """The picture words of `line` as phrases in `template` ("{scene}" is replaced by them)."""
    phrases: list[list[str]] = [[]]
    seen: set[str] = set()
    last_end = 0
    for m in _WORD.finditer(line):
        word = m.group(0).lower()
        bare = word.replace("'", "")
        if _BREAK.search(line, last_end, m.start()) and phrases[-1]:
            phrases.append([])  # punctuation between two kept words: separate pictures
        last_end = m.end()
        if bare in stop_words or len(bare) < MIN_LETTERS or bare in seen:
            if phrases[-1]:
                phrases.append([])
            continue
        seen.add(bare)
        phrases[-1].append(word)
    kept = tuple(" ".join(p) for p in phrases if p)
    text = template.replace("{scene}", ", ".join(kept)) if kept else ""
    return Imagery(text, kept, emphasis_of(line) if emphasis else 1.0)


class LyricPrompter:
    """Lines → prompts, each line extracted once (a song repeats its chorus)."""

    def __init__(self, template: str = "{scene}", emphasis: bool = True, rewriter: Rewriter | None = None) -> None:
        self.template = template
        self.emphasis = emphasis
        self.rewriter = rewriter
        self._cache: dict[str, Imagery] = {}

    def __call__(self, line: str) -> Imagery:
        hit = self._cache.get(line)
        if hit is None:
            hit = extract_imagery(line, self.template, emphasis=self.emphasis)
            if self.rewriter is not None and hit.text:
                hit = Imagery(self.rewriter(line, hit).strip(), hit.phrases, hit.emphasis)
            self._cache[line] = hit
        return hit
