"""The kopf registrations, read from kopf's own registry (no cluster): every event reaches the one step function,
the settings keep kopf within the chart's RBAC."""

from __future__ import annotations

import kopf

from pynomaly_operator import GROUP, PLURAL, VERSION, handlers


def test_every_event_is_handled():
    registry = kopf.get_default_registry()
    changing = {(h.fn.__name__, h.reason.value if h.reason else "resume", h.field)
                for h in registry._changing.get_all_handlers()}
    assert changing == {("changed", "create", None), ("changed", "resume", None), ("changed", "update", ("spec",)),
                        ("deleted", "delete", None)}
    (timer,) = registry._spawning.get_all_handlers()
    assert (timer.fn, timer.interval) == (handlers.tick, handlers.INTERVAL)
    for handler in [*registry._changing.get_all_handlers(), timer]:
        assert (handler.selector.group, handler.selector.version, handler.selector.any_name) == (GROUP, VERSION, PLURAL)


def test_settings_need_no_peering_scanning_or_status_storage():
    settings = kopf.OperatorSettings()
    handlers.configure(settings=settings)
    assert settings.persistence.finalizer == "pynomaly.io/finalizer"
    assert settings.scanning.disabled
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
