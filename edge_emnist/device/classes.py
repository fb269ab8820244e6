"""Subsets of a model's classes that an app may want on their own: digits only, letters only.

A model trained on bymerge answers over 47 classes; an app asking for a digit wants the best digit, not "O"
for a round "0". Restricting is taking the argmax over the subset's output indices, after the model, with no
retraining: the groups are listed in every model card (`class_groups`) so an app needs no table of its own.
"""

from __future__ import annotations

import numpy as np


def class_groups(labels: dict) -> dict[str, list[int]]:
    """{"digits": [...], "letters": [...], "uppercase": [...], "lowercase": [...]} of output indices (by the
    card's label names); a group with no members is left out."""
    names = {int(index): str(name) for index, name in labels.items()}
    groups = {
        "digits": [i for i, n in sorted(names.items()) if len(n) == 1 and n.isdigit()],
        "letters": [i for i, n in sorted(names.items()) if n.isalpha()],
        "uppercase": [i for i, n in sorted(names.items()) if n.isalpha() and n.isupper()],
        "lowercase": [i for i, n in sorted(names.items()) if n.isalpha() and n.islower()],
    }
    return {name: members for name, members in groups.items() if members}


def class_index(labels: dict, name: str) -> int | None:
    """The output index whose label is `name`, else the only one equal ignoring case (letters merged by
    case, as in bymerge's "c" or the letters view), else None."""
    exact = [int(i) for i, n in labels.items() if n == name]
    if exact:
        return exact[0]
    folded = [int(i) for i, n in labels.items() if str(n).lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def restrict(probabilities: np.ndarray, members: list[int]) -> np.ndarray:
    """The predicted class (an index of the full output) when only `members` may be answered."""
    members = np.asarray(members)
    return members[np.argmax(np.asarray(probabilities)[..., members], axis=-1)]
