import pytest

from apps.core.scoping import TenantScopeError, get_active_organization, tenant_scope
from apps.datasets.models import Dataset


def test_it_refuses_to_query_without_an_active_organization(tenant):
    with pytest.raises(TenantScopeError):
        list(Dataset.objects.all())


def test_it_only_sees_the_active_organizations_rows(tenant, outsider):
    Dataset.all_tenants.create(organization=tenant.organization, name="mine")
    Dataset.all_tenants.create(organization=outsider.organization, name="theirs")
    with tenant_scope(tenant.organization):
        assert [d.name for d in Dataset.objects.all()] == ["mine"]
        assert not Dataset.objects.filter(name="theirs").exists()
    with tenant_scope(outsider.organization):
        assert [d.name for d in Dataset.objects.all()] == ["theirs"]


def test_it_creates_rows_in_the_active_organization(tenant, outsider):
    with tenant_scope(outsider.organization):
        dataset = Dataset.objects.create(name="x")
    assert dataset.organization == outsider.organization


def test_it_restores_the_previous_scope_after_the_block(tenant, outsider):
    with tenant_scope(tenant.organization):
        with tenant_scope(outsider.organization):
            assert get_active_organization() == outsider.organization
        assert get_active_organization() == tenant.organization
    assert get_active_organization() is None


def test_it_clears_the_scope_when_the_block_raises(tenant):
    with pytest.raises(ValueError), tenant_scope(tenant.organization):
        raise ValueError
    assert get_active_organization() is None


def test_it_leaves_no_scope_behind_after_an_api_request(api, tenant):
    assert api.get("/api/v1/datasets/").status_code == 200
    assert get_active_organization() is None


def test_it_sees_every_organization_only_inside_the_platform_wide_scope(tenant, outsider):
    from apps.core.scoping import dangerously_all_tenants

    Dataset.all_tenants.create(organization=tenant.organization, name="mine")
    Dataset.all_tenants.create(organization=outsider.organization, name="theirs")
    with dangerously_all_tenants():
        assert sorted(d.name for d in Dataset.objects.all()) == ["mine", "theirs"]
        assert get_active_organization() is None
        with pytest.raises(TenantScopeError):
            Dataset.objects.create(name="whose?")
    with pytest.raises(TenantScopeError):
        list(Dataset.objects.all())
