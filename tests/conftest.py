import os

from hypothesis import HealthCheck, settings

# Deterministic property tests in CI (derandomize); a developer can run HYPOTHESIS_PROFILE=dev for more.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
