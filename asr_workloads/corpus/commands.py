"""Voice-assistant commands with many slot values, sampled reproducibly from a seed.

A command is a template ("call {contact}") with its slots filled from large value lists
(:mod:`.slots`) and spoken numbers (:mod:`.numbers`). Contact names, song titles, artists
and digit strings are combinations, so there are millions of distinct commands and a model
cannot learn them as whole phrases. Texts come out in the transcript's spoken, normalized
form: ``text.normalize(command) == command``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import slots
from .numbers import digits_to_words, number_to_words, ordinal_to_words, time_to_words

__all__ = ["TEMPLATES", "sample_command", "sample_commands"]

Filler = Callable[[np.random.Generator], str]


def _pick(rng: np.random.Generator, values: tuple[str, ...]) -> str:
    return values[int(rng.integers(len(values)))]


def _maybe(rng: np.random.Generator, text: str, p: float = 0.5) -> str:
    return text if rng.random() < p else ""


def _contact(rng: np.random.Generator) -> str:
    # Mostly full names: first names alone would be a closed set of a few hundred.
    first = _pick(rng, slots.FIRST_NAMES)
    return f"{first} {_pick(rng, slots.LAST_NAMES)}" if rng.random() < 0.8 else first


def _phone_number(rng: np.random.Generator) -> str:
    length = int(rng.choice([3, 4, 7, 10]))
    return digits_to_words(rng.integers(0, 10, size=length).tolist())


def _song(rng: np.random.Generator) -> str:
    adjective, noun = _pick(rng, slots.SONG_ADJECTIVES), _pick(rng, slots.SONG_NOUNS)
    form = int(rng.integers(4))
    if form == 0:
        return f"{adjective} {noun}"
    if form == 1:
        return f"the {adjective} {noun}"
    if form == 2:
        return f"{noun} of the {_pick(rng, slots.SONG_NOUNS)}"
    return f"{adjective} {noun} {_pick(rng, slots.SONG_NOUNS)}"


def _artist(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"the {_pick(rng, slots.SONG_ADJECTIVES)} {_pick(rng, slots.ARTIST_NOUNS)}"
    return f"{_pick(rng, slots.FIRST_NAMES)} {_pick(rng, slots.LAST_NAMES)}"


def _clock(rng: np.random.Generator) -> str:
    hour, minute = int(rng.integers(1, 13)), int(rng.choice([0, 5, 10, 15, 20, 30, 45]))
    if rng.random() < 0.3:
        minute = int(rng.integers(60))
    spoken = time_to_words(hour, minute, "past" if rng.random() < 0.3 else "clock")
    suffix = _pick(rng, ("", "", "a m", "p m", "in the morning", "in the evening", "tonight"))
    return f"{spoken} {suffix}".strip()


def _duration(rng: np.random.Generator) -> str:
    unit = _pick(rng, ("seconds", "minutes", "minutes", "hours"))
    amount = int(rng.integers(2, 100 if unit != "hours" else 13))
    extra = " and a half" if unit != "seconds" and rng.random() < 0.1 else ""
    return f"{number_to_words(amount)}{extra} {unit}"


def _day(rng: np.random.Generator) -> str:
    days = ("today", "tomorrow", "this weekend", *(f"on {day}" for day in slots.WEEKDAYS))
    return _pick(rng, days)


def _device(rng: np.random.Generator) -> str:
    room = _maybe(rng, _pick(rng, slots.ROOMS) + " ", 0.7)
    return f"the {room}{_pick(rng, slots.DEVICES)}"


def _call(rng: np.random.Generator) -> str:
    verb = _pick(rng, ("call", "phone", "ring", "dial", "video call"))
    if rng.random() < 0.35:
        return f"{verb} {_phone_number(rng)}"
    where = _pick(rng, ("", "", "", " on mobile", " at home", " at work", " on speaker"))
    return f"{verb} {_contact(rng)}{where}"


def _message(rng: np.random.Generator) -> str:
    verb = _pick(rng, ("send a message to", "text", "message", "tell"))
    return f"{verb} {_contact(rng)} {_pick(rng, ('saying', 'that'))} {_pick(rng, slots.MESSAGES)}"


def _play(rng: np.random.Generator) -> str:
    verb = _pick(rng, ("play", "put on", "shuffle", "i want to hear"))
    form = int(rng.integers(4))
    if form == 0:
        return f"{verb} {_song(rng)} by {_artist(rng)}"
    if form == 1:
        return f"{verb} {_song(rng)}"
    if form == 2:
        return f"{verb} songs by {_artist(rng)}"
    return f"{verb} some {_pick(rng, slots.GENRES)}"


def _switch(rng: np.random.Generator) -> str:
    state = _pick(rng, ("on", "off"))
    if rng.random() < 0.5:
        return f"turn {state} {_device(rng)}"
    return f"switch {_device(rng)} {state}"


def _dim(rng: np.random.Generator) -> str:
    room = _pick(rng, slots.ROOMS)
    if rng.random() < 0.3:
        return f"make the {room} lights {_pick(rng, slots.COLOURS)}"
    percent = number_to_words(int(rng.integers(1, 21)) * 5)
    return f"{_pick(rng, ('dim', 'set', 'brighten'))} the {room} lights to {percent} percent"


def _thermostat(rng: np.random.Generator) -> str:
    degrees = number_to_words(int(rng.integers(55, 86)))
    place = _maybe(rng, _pick(rng, slots.ROOMS) + " ", 0.5)
    return f"set the {place}thermostat to {degrees} degrees"


def _alarm(rng: np.random.Generator) -> str:
    form = int(rng.integers(3))
    if form == 0:
        return f"set an alarm for {_clock(rng)}"
    if form == 1:
        return f"wake me up at {_clock(rng)} {_day(rng)}"
    return f"set a timer for {_duration(rng)}"


def _reminder(rng: np.random.Generator) -> str:
    return f"remind me to {_pick(rng, slots.TASKS)} at {_clock(rng)} {_day(rng)}"


def _weather(rng: np.random.Generator) -> str:
    city = _pick(rng, slots.CITIES)
    form = int(rng.integers(4))
    if form == 0:
        return f"what's the weather in {city} {_day(rng)}"
    if form == 1:
        return f"will it rain in {city} {_day(rng)}"
    if form == 2:
        return f"what time is it in {city}"
    return f"how far is {city} from {_pick(rng, slots.CITIES)}"


def _navigate(rng: np.random.Generator) -> str:
    street = f"{_pick(rng, slots.STREET_NAMES)} {_pick(rng, slots.STREET_TYPES)}"
    if rng.random() < 0.5:
        # House numbers are read as numbers ("two hundred twelve"), or digit by digit.
        number = int(rng.integers(1, 3000))
        spoken = number_to_words(number) if rng.random() < 0.6 else digits_to_words(str(number))
        street = f"{spoken} {street}"
    where = _maybe(rng, f" in {_pick(rng, slots.CITIES)}", 0.4)
    verb = _pick(rng, ("navigate to", "directions to", "how long to drive to", "take me to"))
    return f"{verb} {street}{where}"


def _shopping(rng: np.random.Generator) -> str:
    amount = _maybe(rng, number_to_words(int(rng.integers(2, 13))) + " ", 0.3)
    item = _pick(rng, slots.SHOPPING_ITEMS)
    verb = _pick(rng, ("add", "put"))
    where = _pick(rng, ("to my shopping list", "on the shopping list", "to my cart"))
    return f"{verb} {amount}{item} {where}"


def _question(rng: np.random.Generator) -> str:
    a, b = int(rng.integers(1, 1000)), int(rng.integers(1, 100))
    form = int(rng.integers(5))
    if form == 0:
        op = _pick(rng, ("plus", "minus", "times", "divided by"))
        return f"what's {number_to_words(a)} {op} {number_to_words(b)}"
    if form == 1:
        unit = _pick(rng, ("cups", "ounces", "miles", "pounds", "inches", "feet"))
        to = _pick(rng, ("grams", "liters", "kilometers", "kilograms", "centimeters", "meters"))
        return f"how many {to} is {number_to_words(b)} {unit}"
    if form == 2:
        return f"how do i {_pick(rng, slots.ACTIVITIES)}"
    if form == 3:
        month = _pick(rng, ("january", "march", "may", "july", "september", "december"))
        return f"what day is {month} {ordinal_to_words(int(rng.integers(1, 29)))}"
    return f"who is {_artist(rng)}"


def _control(rng: np.random.Generator) -> str:
    form = int(rng.integers(4))
    if form == 0:
        return f"set the volume to {number_to_words(int(rng.integers(0, 11)))}"
    if form == 1:
        return f"play the {_pick(rng, slots.APPS)}"
    if form == 2:
        return f"skip {number_to_words(int(rng.integers(1, 60)))} seconds"
    return _pick(rng, ("stop", "pause", "next song", "volume up", "resume", "what's playing"))


#: ``(weight, filler)``: name- and digit-heavy commands are frequent on purpose.
TEMPLATES: tuple[tuple[float, Filler], ...] = (
    (3.0, _call),
    (1.5, _message),
    (3.0, _play),
    (1.5, _switch),
    (1.0, _dim),
    (0.7, _thermostat),
    (1.5, _alarm),
    (1.0, _reminder),
    (1.5, _weather),
    (1.0, _navigate),
    (1.5, _shopping),
    (1.0, _question),
    (0.5, _control),
)
_WEIGHTS = np.array([w for w, _ in TEMPLATES]) / sum(w for w, _ in TEMPLATES)
_POLITE = ("", "", "", "", "", "please ", "can you ", "could you ")


def sample_command(rng: np.random.Generator) -> str:
    """One command, drawn with ``rng``; in spoken, normalized form."""
    _, fill = TEMPLATES[int(rng.choice(len(TEMPLATES), p=_WEIGHTS))]
    text = fill(rng)
    if text.startswith(("turn", "set", "play", "call", "add")):
        text = _pick(rng, _POLITE) + text
    return " ".join(text.split())


def sample_commands(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` commands drawn with ``rng``: the same generator state gives the same list.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (e.g. ``numpy.random.default_rng(seed)``).
    n : int
        Number of commands (duplicates possible, as in real traffic).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    return [sample_command(rng) for _ in range(n)]
