"""``python -m course_lib.data download``: get the full MNIST once, with internet."""
from .mnist import main

raise SystemExit(main())
