"""plsim: personalized learning under grade-level accountability, as an agent-based model."""

__version__ = "0.1.0"
