"""Per-organization limits (rate limits) and quotas (monthly use, concurrency, storage).

Every reader asks `apps.quotas.selectors.organization_limits(organization)`; where the numbers come
from (plan defaults, per-organization overrides) is this app's business alone.
"""
