"""The poisoning attacks of the fault campaign stay under the norm bound they are built for."""

from __future__ import annotations

import numpy as np
import pytest

from aicache.features.candidates import CandidateSet
from aicache.federation.validation import update_problem
from aicache.simulation.adversary import BoundedAttack, update_norm
from aicache.tasks.next_command.attacks import label_flipped

HONEST = [np.array([[0.3, -0.4], [0.0, 1.2]]), np.array([0.5, 0.0, -0.1])]
ZERO = [np.zeros((2, 2)), np.zeros(3)]


def test_label_flip_moves_every_answer_to_another_candidate() -> None:
    # Prepare: groups of 3, 1 and 2 candidates; answers 2, 0 and absent (-1)
    examples = CandidateSet(
        features=np.zeros((6, 2), dtype=np.float32),
        offsets=np.array([0, 3, 4, 6], dtype=np.int64),
        targets=np.array([2, 0, -1], dtype=np.int64),
    )
    # Execute / Assert: 2 -> 0 in the group of 3; a lone candidate and an absent answer stay
    assert label_flipped(examples).targets.tolist() == [0, 0, -1]


@pytest.mark.parametrize("attack", ["sign-flip", "scale"])
def test_stretched_attacks_reach_the_margin_of_the_bound_and_are_accepted(attack: str) -> None:
    # Execute
    poisoned = BoundedAttack(attack, margin=0.95).update(HONEST, bound=10.0)
    # Assert: norm 9.5, along (scale) or against (sign-flip) the honest update, accepted
    assert update_norm(poisoned) == pytest.approx(9.5)
    direction = sum(float(np.sum(p * h)) for p, h in zip(poisoned, HONEST, strict=True))
    assert (direction < 0) == (attack == "sign-flip")
    problem = update_problem(
        poisoned, ZERO, num_examples=10, task="t", expected_task="t", max_update_norm=10.0
    )
    assert problem is None


def test_label_flip_sends_its_update_as_trained_unless_it_would_be_rejected() -> None:
    attack = BoundedAttack("label-flip")
    assert update_norm(attack.update(HONEST, bound=100.0)) == pytest.approx(update_norm(HONEST))
    assert update_norm(attack.update(HONEST, bound=1.0)) == pytest.approx(0.95)


def test_unknown_attacks_and_margins_are_named() -> None:
    with pytest.raises(ValueError, match="unknown attack 'nan'"):
        BoundedAttack("nan")
    with pytest.raises(ValueError, match=r"invalid margin 1\.5"):
        BoundedAttack("scale", margin=1.5)
