import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Import every view now, while the worker boots and before it takes connections: otherwise the first
# request each worker serves waits about a second for those imports, and requests queue behind it.
get_resolver().url_patterns  # noqa: B018
