from django.contrib.admin.apps import AdminConfig


class HistoturingAdminConfig(AdminConfig):
    default_site = "config.admin.HistoturingAdminSite"
