"""Show course_lib's own lines in the notebook: the parts of a pipeline the student does not write are seen
once, not hidden behind an import.
"""
from __future__ import annotations

import inspect
import textwrap
from typing import Callable

__all__ = ["source_of", "show_source"]


def source_of(function: Callable) -> str:
    """The source of ``function`` (a function, method or class), headed by where it lives.

    >>> print(source_of(source_of).splitlines()[0])
    # course_lib.viz.source.source_of
    """
    target = inspect.unwrap(function)
    try:
        name = f"{target.__module__}.{target.__qualname__}"
        text = inspect.getsource(target)
    except (AttributeError, OSError, TypeError) as error:
        raise TypeError(f"show_source needs a Python function or class from a file, got a {type(function).__name__}. "
                        "Pass the function itself, e.g. show_source(decode_boxes), not its result.") from None
    return f"# {name}\n{textwrap.dedent(text).rstrip()}"


def show_source(*functions: Callable) -> None:
    """Display the source of each function: highlighted Markdown in Jupyter, plain text elsewhere.

        show_source(STN.forward)        # the lines of course_lib's STN that run in this lesson
    """
    texts = [source_of(f) for f in functions]
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
        if get_ipython() is not None:
            display(Markdown("\n\n".join(f"```python\n{t}\n```" for t in texts)))
            return
    except ImportError:
        pass
    print("\n\n".join(texts))
