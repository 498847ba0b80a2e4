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
            "description": "An API key from the API keys page: `Authorization: Bearer lp_...`.",
        }


class ThrottledBasicScheme(BasicScheme):
    """HTTP Basic under the log-in throttle is HTTP Basic to the schema's readers."""

    target_class = "apps.accounts.authentication.ThrottledBasicAuthentication"
