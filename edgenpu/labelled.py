"""Enums whose members are written in text (YAML, assembly, reports) by a lower-case label."""

from __future__ import annotations

import enum
import re

__all__ = ["LabelledEnum"]


class LabelledEnum(enum.IntEnum):
    """An ``IntEnum`` whose value is its binary encoding and whose label is its text form."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str):
        """The member labelled ``text``; ``ValueError`` naming the choices otherwise."""
        for member in cls:
            if member.label == text:
                return member
        choices = ", ".join(m.label for m in cls)
        raise ValueError(f"unknown {cls.noun()} {text!r} (expected one of {choices})")

    @classmethod
    def noun(cls) -> str:
        """What a member is called in messages: ``WeightFormat`` -> "weight format"."""
        return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()
