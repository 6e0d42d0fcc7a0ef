"""Fixed texts shared by the API, the widget and the pages (translated in our catalogue)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

WIDGET_TITLE = _("A message about your search")
WARNING = _(
    "Images and videos of the sexual abuse of children are illegal, and every viewing harms "
    "the child shown again. If you are worried about your thoughts or what you look at, you "
    "can talk to a therapist: free, anonymous and confidential."
)
HELP_BUTTON = _("Get confidential help")
