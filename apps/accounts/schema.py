"""OpenAPI descriptions of API-key and HTTP Basic authentication (loaded by AccountsConfig)."""

from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key from the API keys page: `Authorization: Bearer lp_...`. Its scopes "
                "decide what it may call: `read` every GET, `write` every other method except "
                "predict, `predict` POST endpoints/{id}/predict/ (of the endpoints it lists, if "
                "any); a call outside them answers 403 naming the scope. A key cannot manage keys."
            ),
        }


class ThrottledBasicScheme(BasicScheme):
    """HTTP Basic under the log-in throttle is HTTP Basic to the schema's readers."""

    target_class = "apps.accounts.authentication.ThrottledBasicAuthentication"
