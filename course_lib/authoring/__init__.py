"""The build tooling of the course (not imported by a student): the student edition and the rendered HTML site.

    uv run python -m course_lib.authoring.editions student OUT/
    uv run python -m course_lib.authoring.editions html site/

Its dependencies (nbconvert, nbclient, latex2mathml) are in the ``dev`` dependency group.
"""
