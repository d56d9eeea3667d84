"""System checks: configuration problems, reported by ``manage.py check``.

Django runs these before every management command, so a bad value stops a
run at start-up with the variable to set.
"""

from django.conf import settings
from django.core.checks import Error, register


@register("config")
def check_environment(app_configs, **kwargs):
    return [
        Error(problem.message, hint=problem.hint, id=f"migrator.E{index:03d}")
        for index, problem in enumerate(settings.CONFIG_PROBLEMS, start=1)
    ]
