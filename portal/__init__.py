"""The site shell: the top-level routes that join the apps, and the study manager's start page. It sits
above every app, so that `config` holds settings, Celery and the environment only."""
