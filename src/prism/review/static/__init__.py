"""Static review: every Python file of a project judged by what its names reach, never imported.

The public face is small: `review_project(project, policy=...) -> StaticReport` and the frozen
`StaticPolicy`. The modules behind it are internal; see docs/intake-and-review.md.
"""

from prism.review.static.policy import StaticPolicy
from prism.review.static.review import StaticReport, review_project

__all__ = ["StaticPolicy", "StaticReport", "review_project"]
