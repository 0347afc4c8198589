"""autofuse.testing: the conformance checks pass for the built-ins and name what is wrong
with a broken learner or combiner."""

from __future__ import annotations

import pytest

from autofuse import plugins
from autofuse.combiners import CombinerSpec
from autofuse.testing import check_combiner, check_learner, example_data

import _plugins
from _learners import RAISES


def test_builtin_learner_passes():
    check_learner(plugins.learners()["linear"])


def test_builtin_combiner_passes():
    check_combiner(plugins.combiners()["caruana"], tasks=("binary", "regression"))


def test_example_data_has_text_bool_and_missing_values():
    X, y = example_data("multiclass")
    assert X["group"].isna().any() and X["flag"].dtype == bool and X.isna().any().any()
    assert set(y) == {"alpha", "beta", "gamma"}


def test_learner_that_raises_is_named_with_the_step():
    with pytest.raises(AssertionError, match=r"learner 'raises' \[binary\]: fitting the "
                       r"default \(\{\}\): RuntimeError: boom"):
        check_learner(RAISES, tasks=["binary"], run=False)


def test_nondeterministic_learner_fails():
    with pytest.raises(AssertionError, match=r"\[binary\]: determinism"):
        check_learner(_plugins.NOISY, run=False)


def test_parameters_must_come_from_the_trial():
    with pytest.raises(AssertionError, match="'C' was not suggested through the trial"):
        check_learner(_plugins.SNEAKY, run=False)


def test_claimed_task_must_exist():
    with pytest.raises(AssertionError, match="claims only"):
        check_learner(_plugins.NOISY, tasks=["regression"], run=False)


def test_combiner_with_invalid_weights_fails():
    spec = CombinerSpec("broken", _plugins._broken)
    with pytest.raises(AssertionError, match=r"combiner 'broken' \[binary\]: weights_"):
        check_combiner(spec, tasks=("binary",), run=False)


def test_combiner_worse_than_best_single_fails():
    spec = CombinerSpec("worst", _plugins._worst)
    with pytest.raises(AssertionError, match="worse than the best single model"):
        check_combiner(spec, tasks=("multiclass",), run=False)


def test_check_learner_takes_a_spec():
    with pytest.raises(AssertionError, match="takes an autofuse.learners.LearnerSpec"):
        check_learner("linear")


def test_portfolio_key_the_space_does_not_suggest_fails():
    with pytest.raises(AssertionError, match=r"portfolio\[0\].*never suggests \[.penalty.\]"):
        check_learner(_plugins.BAD_PORTFOLIO, run=False)


def test_portfolio_value_outside_the_space_fails():
    with pytest.raises(AssertionError, match=r"portfolio\[0\].*not a point of the search space"):
        check_learner(_plugins.OUT_OF_RANGE, run=False)


def test_combiner_that_overfits_fails_on_the_held_out_fold():
    spec = CombinerSpec("memorizer", _plugins._memorizer)
    with pytest.raises(AssertionError, match=r"combiner 'memorizer' \[multiclass\]: held-out "
                       r"fold: .* it overfits"):
        check_combiner(spec, tasks=("multiclass",), run=False)


@pytest.mark.parametrize("name, options", [("stacking", None), ("average", {"k": 2}),
                                           ("prune", {"max_members": 2}), ("best", None)])
def test_builtin_fusion_combiners_pass(name, options):
    check_combiner(plugins.combiners()[name], tasks=("binary", "multiclass", "regression"),
                   options=options, run=False)


def test_unknown_option_for_check_combiner_names_it():
    with pytest.raises(AssertionError, match=r"build \(options \{'nope': 1\}\).*has no option 'nope'"):
        check_combiner(plugins.combiners()["average"], options={"nope": 1}, run=False)
