from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from apps.accounts import schema  # noqa: F401 - registers the OpenAPI auth scheme
        from apps.accounts.sessions import user_session_forget

        def forget(sender: object, request: object, **kwargs: object) -> None:
            if request is not None:
                user_session_forget(session=request.session)  # type: ignore[attr-defined]

        user_logged_out.connect(forget, weak=False, dispatch_uid="accounts.session_forget")
