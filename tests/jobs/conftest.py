from tests.jobs.processes import workers

__all__ = ["workers"]
