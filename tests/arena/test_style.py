"""Style counts of an answer (length, headers, list items, bold spans outside code) and battle differences."""

from __future__ import annotations

import numpy as np
import pytest

from arena.style import STYLE_FEATURES, StyleCounts, estimate_tokens, style_counts, style_differences

ANSWER = """# Title

Some **bold** text and __more bold__, not ** spaced ** or **unclosed.

## Steps
1. First
2) Second
- a dash item
* a star item
+ a plus item
   - nested item

```python
# a comment, not a header
- not a list item
x = "**not bold**"
```

#not a header (no space)
"""


def test_markdown_is_counted_outside_fenced_code() -> None:
    counts = style_counts(ANSWER, tokens=120)
    assert counts == StyleCounts(tokens=120, headers=2, lists=6, bold=2)
    assert counts.as_tuple() == (120, 2, 6, 2)
    assert len(STYLE_FEATURES) == len(counts.as_tuple())


def test_plain_text_has_no_markdown_and_its_length_is_estimated_without_a_count() -> None:
    counts = style_counts("Paris is the capital of France.")
    assert counts == StyleCounts(tokens=7, headers=0, lists=0, bold=0)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("Bonjour, le monde !", 5), ("我是一个模型。", 7), ("日本語の文", 5), ("2 + 2 = 4", 5)],
)
def test_token_estimates(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_a_negative_backend_count_is_not_trusted() -> None:
    assert style_counts("one two", tokens=-1).tokens == 2


def test_differences_are_normalised_between_minus_one_and_one() -> None:
    a = np.array([[100, 2, 0, 1], [0, 0, 0, 0]])
    b = np.array([[50, 0, 0, 3], [9, 0, 0, 0]])
    diff = style_differences(a, b)
    assert np.allclose(diff[0], [50 / 151, 2 / 3, 0.0, -2 / 5])
    assert np.allclose(diff[1], [-0.9, 0.0, 0.0, 0.0])
    assert np.all(np.abs(diff) < 1)


def test_an_unclosed_fence_runs_to_the_end_and_rules_are_not_list_items() -> None:
    text = "- item\n\n* * *\n---\n```python\n# code\n- code\n" + "```python\nx\n" * 5000
    assert style_counts(text).as_tuple()[1:] == (0, 1, 0)  # one list item; the rules and all the code are left out
    longer = "````\n```\n# inside\n````\n# outside"
    assert style_counts(longer).headers == 1  # a ```` fence is not closed by ```
