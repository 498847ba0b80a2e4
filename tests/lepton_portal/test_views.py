"""The dashboard (lepton_portal/views.py): the organization's own recent work, nobody else's."""

from apps.datasets.models import Dataset
from tests.conftest import PASSWORD


def test_an_anonymous_visitor_is_sent_to_the_login_form(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_lists_the_organizations_recent_datasets_only(client, tenant, outsider):
    Dataset.all_tenants.create(organization=tenant.organization, name="Our shapes")
    Dataset.all_tenants.create(organization=outsider.organization, name="Their secrets")
    assert client.login(email=tenant.user.email, password=PASSWORD)
    page = client.get("/").content.decode()
    assert "Welcome to Acme Vision" in page
    assert "Our shapes" in page
    assert "Their secrets" not in page
