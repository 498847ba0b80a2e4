"""What the route-walking tests need to know about pages: which object each page's id names.

Keys are URL names; values are keys of the `world` fixture of tests/apps/core/test_api_isolation.py.
A new page with an id gets its line here, or the walks fail on it.
"""

PAGE_OBJECTS: dict[str, str] = {
    "datasets:version": "dataset-version",
    "datasets:tabular_confirm": "dataset-version",
    "datasets:gallery": "dataset-version",
    "datasets:download": "dataset-version",
    "datasets:derive": "dataset-version",
    "datasets:item_thumbnail": "dataset-item",
    "datasets:item_image": "dataset-item",
    "datasets:delete": "dataset",
    "training:run": "run",
    "training:cancel": "run",
    "training:retrain": "model",
    "training:leaderboard": "dataset",
    "deployments:detail": "endpoint",
    "deployments:delete": "endpoint",
    "training:delete": "model",
    "accounts:api_key_revoke": "api-key",
    "tenants:member_role": "member",
    "tenants:member_remove": "member",
    "tenants:invitation_resend": "invitation",
    "tenants:invitation_revoke": "invitation",
}
