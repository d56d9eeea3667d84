from django.contrib import admin
from django.urls import include, path, re_path

from migrator.views import RENAMED_ADMIN_PAGES, renamed_admin_page

urlpatterns = [
    re_path(rf"^admin/migrator/(?P<old>{'|'.join(RENAMED_ADMIN_PAGES)})/(?P<rest>(?s:.*))$", renamed_admin_page),
    path("admin/", admin.site.urls),
    path("", include("migrator.urls")),
]
