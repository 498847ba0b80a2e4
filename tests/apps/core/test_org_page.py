"""Pages behind @org_page when the visitor is not logged in."""


def test_a_page_sends_an_anonymous_visitor_to_the_login_form(client, db):
    response = client.get("/datasets/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/datasets/"


def test_a_live_fragment_polled_after_logout_sends_the_whole_page_to_the_login_form(client, db):
    # htmx would follow a 302 and swap the login form into the fragment; HX-Redirect makes the
    # browser load the login page instead, returning to the page the fragment belongs to.
    response = client.get(
        "/datasets/?fragment=live",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/datasets/",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=/datasets/"
    assert response.content == b""
